import BerthOCI
import Foundation
import Glibc
import XCTest
@testable import BerthImages

final class SnapshotterTests: XCTestCase {
    private func layer(_ scratch: Scratch, _ name: String, _ files: [String]) throws -> (String, Digest) {
        let path = scratch.sub(name)
        try makeTar(path) { w in for f in files { try w.addFile(f, Array(f.utf8)) } }
        return (path, Digest.of(readFile(path)!))
    }

    func testKeepsEachLayerOnceAndReturnsTheOverlayMountWithoutPerformingIt() throws {
        let scratch = Scratch()
        let snap = try Snapshotter(root: scratch.sub("s"))
        let (p1, d1) = try layer(scratch, "1.tar", ["a"])
        let (p2, d2) = try layer(scratch, "2.tar", ["b"])
        for (p, d) in [(p1, d1), (p2, d2)] {
            let fd = open(p, O_RDONLY)
            defer { close(fd) }
            XCTAssertEqual(try snap.unpackLayer(d, from: fd)?.diffID, d)
            XCTAssertNil(try snap.unpackLayer(d, from: fd), "already unpacked")
        }
        XCTAssertEqual(try snap.layers(), [d1, d2].sorted())
        XCTAssertTrue(exists(scratch.sub("s/layers/\(d1.hex)/fs/a")))

        let m = try snap.prepare(container: "c1", layers: [d1, d2])
        let dir = scratch.sub("s/containers/c1")
        XCTAssertEqual(m.lower, [scratch.sub("s/layers/\(d2.hex)/fs"), scratch.sub("s/layers/\(d1.hex)/fs")])
        XCTAssertEqual(m.upper, dir + "/upper")
        XCTAssertEqual(m.work, dir + "/work")
        XCTAssertEqual(m.target, dir + "/merged")
        XCTAssertEqual(m.options, "lowerdir=\(m.lower[0]):\(m.lower[1]),upperdir=\(m.upper),workdir=\(m.work)")
        XCTAssertFalse(m.exceedsMountDataLimit)
        XCTAssertTrue(exists(m.upper) && exists(m.work) && exists(m.target))
        XCTAssertEqual(try snap.snapshot(container: "c1").chainID, ChainID.of([d1, d2]))
        XCTAssertEqual(try snap.snapshot(container: "c1").mount, m)
        expectError(.conflict) { _ = try snap.prepare(container: "c1", layers: [d1]) }
        expectError(.notFound) { _ = try snap.prepare(container: "c2", layers: [Digest.of([])]) }
        expectError(.invalidArgument) { _ = try snap.prepare(container: "../x", layers: [d1]) }

        // Layers a container uses survive pruning; the others go.
        XCTAssertEqual(try snap.prune(keeping: []), [])
        let scratchOnly = try snap.prepare(container: "c3", layers: [])
        XCTAssertEqual(scratchOnly.lower, [scratch.sub("s/containers/c3/empty")])
        try snap.remove(container: "c1")
        XCTAssertFalse(exists(dir))
        XCTAssertEqual(try snap.containers(), ["c3"])
        XCTAssertEqual(Set(try snap.prune(keeping: [d2])), [d1])
        XCTAssertEqual(try snap.layers(), [d2])
        expectError(.notFound) { try snap.remove(container: "c1") }
    }

    func testMountOptionsEscapeSeparatorsAndReportThePageLimit() {
        let m = OverlayMount(lower: ["/a:b", "/c,d"], upper: "/u\\v", work: "/w", target: "/t")
        XCTAssertEqual(m.options, "lowerdir=/a\\:b:/c\\,d,upperdir=/u\\\\v,workdir=/w")
        let many = OverlayMount(lower: (0..<60).map { "/var/lib/berth/layers/\(String(repeating: "f", count: 64))/fs\($0)" },
                                upper: "/u", work: "/w", target: "/t")
        XCTAssertTrue(many.exceedsMountDataLimit)
    }
}
