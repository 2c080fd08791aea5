import BerthOCI
import Foundation
import Glibc
import XCTest
@testable import BerthImages

/// Measurements, not checks: run with BERTH_BENCH=1 in a release build, e.g.
/// `BERTH_BENCH=1 swift test -c release -Xswiftc -enable-testing --filter ThroughputTests`.
final class ThroughputTests: XCTestCase {
    private func seconds(_ body: () throws -> Void) rethrows -> Double {
        var a = timespec(), b = timespec()
        clock_gettime(CLOCK_MONOTONIC, &a)
        try body()
        clock_gettime(CLOCK_MONOTONIC, &b)
        return Double(b.tv_sec - a.tv_sec) + Double(b.tv_nsec - a.tv_nsec) / 1e9
    }

    func testSHA256AndUnpackThroughput() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["BERTH_BENCH"] == "1", "set BERTH_BENCH=1 to measure")
        let scratch = Scratch()
        var g = SystemRandomNumberGenerator()
        let block = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &g) }
        let big = [UInt8]((0..<100).flatMap { _ in block })
        let hashTime = seconds { _ = Digest.of(big) }
        print("sha256: \(Int(100 / hashTime)) MB/s")

        // ~100 MB: 2 files of 20 MB, 600 of 100 KB, 2000 of 1 KB, 300 directories, symlinks.
        for (name, compression) in [("layer.tar", TarWriter.Compression.none), ("layer.tar.gz", .gzip)] {
            try makeTar(scratch.sub(name), compression: compression) { w in
                for d in 0..<300 { try w.addDirectory("d\(d)") }
                for i in 0..<2 { try w.addFile("big\(i)", Array(big[(i * 20 << 20)..<((i + 1) * 20 << 20)])) }
                for i in 0..<600 { try w.addFile("d\(i % 300)/m\(i)", Array(block[0..<102_400])) }
                for i in 0..<2000 {
                    try w.addFile("d\(i % 300)/s\(i)", Array(block[i..<(i + 1024)]))
                    if i % 4 == 0 { try w.addSymlink("d\(i % 300)/l\(i)", target: "s\(i)") }
                }
            }
            let size = Double(lstatOf(scratch.sub(name))!.st_size) / 1e6
            let fd = open(scratch.sub(name), O_RDONLY)
            let verify = try seconds { _ = try TarReader.diffID(fd: fd, what: name) }
            close(fd)
            print("diffID pass \(name) (decompress + hash, no writes): \(String(format: "%.2f", verify)) s")
            var summary: UnpackSummary?
            let t = try seconds { summary = try LayerUnpacker().unpack(path: scratch.sub(name), into: scratch.sub("out-" + name)) }
            let tarMB = Double(summary!.tarBytes) / 1e6
            let gnu = try seconds {
                _ = try runTool(["sh", "-c", "mkdir \(scratch.sub("gnu-" + name)) && tar -xf \(scratch.sub(name)) -C \(scratch.sub("gnu-" + name))"])
            }
            print("GNU tar -xf \(name): \(String(format: "%.2f", gnu)) s")
            print("unpack \(name): \(Int(size)) MB file, \(Int(tarMB)) MB tar, \(summary!.entries) entries in \(String(format: "%.2f", t)) s = \(Int(tarMB / t)) MB/s of tar")
        }
    }
}
