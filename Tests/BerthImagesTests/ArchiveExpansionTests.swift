import BerthOCI
import BerthOS
import Foundation
import Glibc
import XCTest
@testable import BerthImages

/// Archives that are small on the wire and huge once expanded: sparse entries (GNU tar writes
/// them), oversized JSON documents, streams past a limit. Memory stays bounded and what cannot
/// fit is refused before anything is written.
final class ArchiveExpansionTests: XCTestCase {
    private func names(_ dir: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() }

    /// A tar (`tar --sparse`) of one file of `size` bytes that is a hole but for 4 KiB at the end.
    private func sparseArchive(_ scratch: Scratch, size: Int64, format: String = "posix") throws -> String {
        let file = scratch.mkdir("src") + "/big"
        let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        XCTAssertEqual(ftruncate(fd, off_t(size)), 0)
        _ = [UInt8](repeating: 120, count: 4096).withUnsafeBytes { pwrite(fd, $0.baseAddress, 4096, off_t(size - 4096)) }
        close(fd)
        let out = scratch.sub("sparse-\(format).tar")
        try runTool(["tar", "--sparse", "--format=\(format)", "-C", scratch.sub("src"), "-cf", out, "big"])
        unlink(file)
        return out
    }

    /// Peak resident memory since the last reset (VmHWM), and the reset (clear_refs 5).
    private func peakMemory() -> Int64 {
        let text = (try? FileSystem.readString("/proc/self/status")) ?? ""
        let line = text.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? ""
        return (Int64(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
    }

    private func resetPeakMemory() -> Int64 {
        try? FileSystem.overwrite("/proc/self/clear_refs", Array("5".utf8))
        return peakMemory()
    }

    func testSparseEntryIsStoredWholeWithoutHoldingItsHolesInMemory() throws {
        let scratch = Scratch()
        let content = try ContentStore(root: scratch.sub("content"))
        for format in ["gnu", "posix"] {
            let size: Int64 = 128 << 20
            let path = try sparseArchive(scratch, size: size, format: format)
            let fd = open(path, O_RDONLY)
            defer { close(fd) }
            let before = resetPeakMemory()
            let files = try ArchiveFiles(fd: fd, content: content, lease: content.beginLease())
            XCTAssertLessThan(peakMemory() - before, 32 << 20, "\(format): the holes were held in memory")
            let blob = try files.blob("big", what: "big")
            XCTAssertEqual(blob.size, size, format)
            // The digest of the expanded file: 128 MiB of zeros, then 4 KiB of "x".
            var hasher = SHA256()
            let zeros = [UInt8](repeating: 0, count: 1 << 20)
            for _ in 0..<(Int(size) - 4096) / zeros.count { zeros.withUnsafeBytes { hasher.update($0) } }
            zeros.prefix((Int(size) - 4096) % zeros.count).withUnsafeBytes { hasher.update($0) }
            [UInt8](repeating: 120, count: 4096).withUnsafeBytes { hasher.update($0) }
            XCTAssertEqual(blob.digest, hasher.finalize(), format)
        }
    }

    func testAnArchiveClaimingMoreThanTheFreeDiskIsRefusedAndLeavesNothing() throws {
        try XCTSkipUnless(isRoot, "mounts a small tmpfs")
        let scratch = Scratch()
        // The store on a 64 MiB tmpfs: should the check ever go, the writes stop there, not
        // on the machine's disk.
        let root = scratch.mkdir("a")
        guard mount("tmpfs", root, "tmpfs", 0, "size=64m") == 0 else { throw XCTSkip("cannot mount a tmpfs") }
        let store = try ImageStore(root: root)
        let path = try sparseArchive(scratch, size: 1 << 30)
        let before = resetPeakMemory()
        expectError(.system, containing: "Error processing tar file: big takes the archive's content to 1 GiB") {
            _ = try store.load(path: path)
        }
        XCTAssertLessThan(peakMemory() - before, 32 << 20, "the holes were held in memory")
        XCTAssertEqual(names(scratch.sub("a/content/blobs/sha256")), [])
        XCTAssertEqual(names(scratch.sub("a/content/ingest")), [])
    }

    func testJSONDocumentsLargerThanTheCapAreRefused() throws {
        let scratch = Scratch()
        let store = try ImageStore(root: scratch.sub("a"))
        let path = scratch.sub("big-manifest.tar")
        try makeTar(path) { w in
            try w.addFile("manifest.json", Array("[".utf8) + [UInt8](repeating: 32, count: Int(ArchiveFiles.maxDocumentSize)) + Array("]".utf8))
        }
        expectError(.invalidArgument, containing: "too large") { _ = try store.load(path: path) }
        XCTAssertEqual(names(scratch.sub("a/content/blobs/sha256")), [])
    }

    func testAStreamPastTheExpansionLimitFailsWithTheLimitsError() throws {
        let scratch = Scratch()
        let path = scratch.sub("plain.tar")
        try makeTar(path, compression: .gzip) { w in try w.addFile("zeros", [UInt8](repeating: 0, count: 1 << 20)) }
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        let limit = ImageError(.system, "the tarball expands too far")
        XCTAssertThrowsError(try TarReader(fd: fd, what: "t", limit: (64 << 10, limit)).finish()) {
            XCTAssertEqual($0 as? ImageError, limit)
        }
    }
}
