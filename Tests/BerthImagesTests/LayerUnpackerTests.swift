import BerthOCI
import Foundation
import Glibc
import XCTest
@testable import BerthImages

final class LayerUnpackerTests: XCTestCase {
    private func unpack(_ tar: String, _ dest: String, _ whiteouts: WhiteoutFormat = .overlay) throws -> UnpackSummary {
        try LayerUnpacker(whiteouts: whiteouts).unpack(path: tar, into: dest)
    }

    private func text(_ path: String) -> String? { readFile(path).map { String(decoding: $0, as: UTF8.self) } }

    /// A directory outside the unpack root holding a file, to show nothing reached it.
    private func sentinel(_ scratch: Scratch) -> String {
        let dir = scratch.mkdir("sentinel")
        XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/file", contents: Data("untouched".utf8)))
        return dir
    }

    private func assertSentinelIntact(_ dir: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: dir))?.sorted(), ["file"], file: file, line: line)
        XCTAssertEqual(text(dir + "/file"), "untouched", file: file, line: line)
        XCTAssertEqual(lstatOf(dir + "/file").map { $0.st_mode & S_IFMT }, S_IFREG, file: file, line: line)
    }

    func testUnpacksFilesDirectoriesLinksDevicesOwnershipModesTimesAndXattrs() throws {
        try XCTSkipUnless(isRoot, "needs root for chown and mknod")
        let scratch = Scratch()
        let tar = scratch.sub("layer.tar")
        // security.capability v2: cap_net_bind_service permitted+effective.
        let cap: [UInt8] = [0x01, 0, 0, 0x02, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        try makeTar(tar) { w in
            try w.addDirectory("etc", mode: 0o755, mtime: 1_000_000_000)
            try w.addFile("etc/hostname", Array("box\n".utf8), mode: 0o640, uid: 1234, gid: 5678, mtime: 1_234_567_890,
                          xattrs: [.init(name: "user.berth", value: Array("yes".utf8))])
            try w.addFile("bin/ping", Array("ELF".utf8), mode: 0o4755, uid: 0, gid: 0,
                          xattrs: [.init(name: "security.capability", value: cap)])
            try w.addDirectory("tmp", mode: 0o1777)
            try w.addSymlink("bin/sh", target: "/bin/busybox")
            try w.addHardlink("etc/hostname2", target: "etc/hostname")
            try w.add(TarHeader(path: "dev/null", kind: .characterDevice, mode: 0o666, deviceMajor: 1, deviceMinor: 3))
            try w.add(TarHeader(path: "dev/loop0", kind: .blockDevice, mode: 0o660, gid: 6, deviceMajor: 7, deviceMinor: 0))
            try w.add(TarHeader(path: "run/fifo", kind: .fifo, mode: 0o600))
            try w.add(TarHeader(path: "sgid", kind: .directory, mode: 0o2775, gid: 50))
        }
        let root = scratch.sub("root")
        let s = try unpack(tar, root)
        XCTAssertEqual(s.entries, 10)
        XCTAssertEqual(s.contentBytes, 7)
        XCTAssertEqual(s.diffID, Digest.of(readFile(tar)!))
        XCTAssertEqual(s.tarBytes, Int64(readFile(tar)!.count))
        XCTAssertEqual(s.warnings, [])

        let host = lstatOf(root + "/etc/hostname")!
        XCTAssertEqual(text(root + "/etc/hostname"), "box\n")
        XCTAssertEqual(host.st_uid, 1234)
        XCTAssertEqual(host.st_gid, 5678)
        XCTAssertEqual(host.st_mode & 0o7777, 0o640)
        XCTAssertEqual(host.st_mtim.tv_sec, 1_234_567_890)
        XCTAssertEqual(host.st_nlink, 2)
        XCTAssertEqual(lstatOf(root + "/etc/hostname2")?.st_ino, host.st_ino)
        XCTAssertEqual(Xattr.get(path: root + "/etc/hostname", "user.berth"), Array("yes".utf8))
        XCTAssertEqual(lstatOf(root + "/etc")?.st_mtim.tv_sec, 1_000_000_000, "directory times are set after their children")

        XCTAssertEqual(lstatOf(root + "/bin/ping")!.st_mode & 0o7777, 0o4755, "setuid survives chown")
        XCTAssertEqual(Xattr.get(path: root + "/bin/ping", "security.capability"), cap, "capability survives chown")
        XCTAssertEqual(lstatOf(root + "/bin")!.st_mode & 0o7777, 0o755, "implicit parents are 0755")
        XCTAssertEqual(lstatOf(root + "/tmp")!.st_mode & 0o7777, 0o1777)
        XCTAssertEqual(lstatOf(root + "/sgid")!.st_mode & 0o7777, 0o2775)
        XCTAssertEqual(lstatOf(root + "/sgid")!.st_gid, 50)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: root + "/bin/sh"), "/bin/busybox")

        let null = lstatOf(root + "/dev/null")!
        XCTAssertEqual(null.st_mode & S_IFMT, S_IFCHR)
        XCTAssertEqual(null.st_mode & 0o7777, 0o666)
        XCTAssertEqual(null.st_rdev, LayerApplier.makedev(1, 3))
        let loop = lstatOf(root + "/dev/loop0")!
        XCTAssertEqual(loop.st_mode & S_IFMT, S_IFBLK)
        XCTAssertEqual(loop.st_rdev, LayerApplier.makedev(7, 0))
        XCTAssertEqual(loop.st_gid, 6)
        XCTAssertEqual(lstatOf(root + "/run/fifo")!.st_mode & S_IFMT, S_IFIFO)
    }

    func testDiffIDIsTheDigestOfTheUncompressedStreamForGzipAndZstd() throws {
        let scratch = Scratch()
        func build(_ path: String, _ c: TarWriter.Compression) throws {
            try makeTar(path, compression: c) { w in
                try w.addDirectory("a")
                try w.addFile("a/big", (0..<300_000).map { UInt8(truncatingIfNeeded: $0 % 251) })
            }
        }
        try build(scratch.sub("plain.tar"), .none)
        try build(scratch.sub("layer.tar.gz"), .gzip)
        try build(scratch.sub("layer.tar.zst"), .zstd)
        let expected = Digest.of(readFile(scratch.sub("plain.tar"))!)
        XCTAssertEqual(try unpack(scratch.sub("plain.tar"), scratch.sub("p")).compression, LayerCompression.none)
        let gz = try unpack(scratch.sub("layer.tar.gz"), scratch.sub("g"))
        XCTAssertEqual(gz.compression, .gzip)
        XCTAssertEqual(gz.diffID, expected)
        let zst = try unpack(scratch.sub("layer.tar.zst"), scratch.sub("z"))
        XCTAssertEqual(zst.compression, .zstd)
        XCTAssertEqual(zst.diffID, expected)
        XCTAssertEqual(readFile(scratch.sub("z/a/big"))?.count, 300_000)
        // The padding after the end-of-archive marker is part of the DiffID: checked against sha256sum.
        let sum = try runTool(["sh", "-c", "zstd -dc \(scratch.sub("layer.tar.zst")) | sha256sum"]).prefix(64)
        XCTAssertEqual(zst.diffID.hex, String(sum))
    }

    func testOverlayFormatTurnsWhiteoutsIntoDevicesAndOpaqueXattrs() throws {
        try XCTSkipUnless(isRoot, "needs root for mknod and trusted xattrs")
        let scratch = Scratch()
        try makeTar(scratch.sub("l2.tar")) { w in
            try w.addFile("d/.wh.a", [])
            try w.addFile(".wh.f", [])
            try w.addDirectory("o")
            try w.addFile("o/.wh..wh..opq", [])
            try w.addFile("o/z", Array("z".utf8))
            try w.addFile(".wh..wh.plnk", [])
        }
        let root = scratch.sub("l2")
        _ = try unpack(scratch.sub("l2.tar"), root)
        for p in ["d/a", "f"] {
            let st = lstatOf(root + "/" + p)
            XCTAssertEqual(st.map { $0.st_mode & S_IFMT }, S_IFCHR, p)
            XCTAssertEqual(st?.st_rdev, 0, p)
        }
        XCTAssertEqual(Xattr.get(path: root + "/o", "trusted.overlay.opaque"), Array("y".utf8))
        XCTAssertFalse(exists(root + "/o/.wh..wh..opq"))
        XCTAssertFalse(exists(root + "/.wh..wh.plnk"))
    }

    func testFlattenAppliesWhiteoutsAndOpaqueDirectoriesToLowerLayers() throws {
        let scratch = Scratch()
        try makeTar(scratch.sub("l1.tar")) { w in
            try w.addDirectory("d")
            try w.addFile("d/a", Array("a".utf8))
            try w.addFile("d/b", Array("b".utf8))
            try w.addFile("f", Array("f".utf8))
            try w.addDirectory("o")
            try w.addFile("o/x", Array("x".utf8))
            try w.addDirectory("o/sub")
            try w.addFile("o/sub/y", Array("y".utf8))
        }
        try makeTar(scratch.sub("l2.tar")) { w in
            try w.addFile("d/.wh.a", [])
            try w.addFile(".wh.f", [])
            try w.addDirectory("o")
            try w.addFile("o/.wh..wh..opq", [])
            try w.addDirectory("o/sub")
            try w.addFile("o/sub/new", Array("n".utf8))
            try w.addFile("o/z", Array("z".utf8))
        }
        let fds = [open(scratch.sub("l1.tar"), O_RDONLY), open(scratch.sub("l2.tar"), O_RDONLY)]
        defer { fds.forEach { close($0) } }
        let root = scratch.sub("flat")
        let summaries = try LayerUnpacker().flatten(layers: fds, into: root)
        XCTAssertEqual(summaries.count, 2)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root).sorted(), ["d", "o"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root + "/d"), ["b"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root + "/o").sorted(), ["sub", "z"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root + "/o/sub"), ["new"])
    }

    func testOverlayMountOfUnpackedLayersHidesWhiteoutsLikeTheSpecSays() throws {
        try XCTSkipUnless(isRoot, "needs root to mount overlayfs")
        let scratch = Scratch()
        try makeTar(scratch.sub("l1.tar")) { w in
            try w.addDirectory("d")
            try w.addFile("d/a", Array("a".utf8))
            try w.addFile("d/b", Array("b".utf8))
            try w.addFile("f", Array("f".utf8))
            try w.addDirectory("o")
            try w.addFile("o/x", Array("x".utf8))
        }
        try makeTar(scratch.sub("l2.tar")) { w in
            try w.addFile("d/.wh.a", [])
            try w.addFile(".wh.f", [])
            try w.addDirectory("o")
            try w.addFile("o/.wh..wh..opq", [])
            try w.addFile("o/z", Array("z".utf8))
        }
        let snap = try Snapshotter(root: scratch.sub("snap"))
        var diffIDs: [Digest] = []
        for name in ["l1.tar", "l2.tar"] {
            let fd = open(scratch.sub(name), O_RDONLY)
            defer { close(fd) }
            let diffID = Digest.of(readFile(scratch.sub(name))!)
            XCTAssertNotNil(try snap.unpackLayer(diffID, from: fd))
            diffIDs.append(diffID)
        }
        let m = try snap.prepare(container: "c1", layers: diffIDs)
        XCTAssertEqual(m.lower, diffIDs.reversed().map(snap.layerDirectory))
        guard mount("overlay", m.target, "overlay", 0, m.options) == 0 else {
            return XCTFail("mount overlay: \(String(cString: strerror(errno))) with \(m.options)")
        }
        defer { umount2(m.target, Int32(MNT_DETACH)) }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: m.target).sorted(), ["d", "o"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: m.target + "/d"), ["b"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: m.target + "/o"), ["z"])
    }

    // MARK: Hostile layers

    func testDotDotEntryIsRefusedAndNothingIsWritten() throws {
        let scratch = Scratch()
        let guardDir = sentinel(scratch)
        try makeTar(scratch.sub("evil.tar")) { w in
            try w.addFile("ok", Array("ok".utf8))
            try w.addFile("../evil", Array("evil".utf8))
            try w.addFile("a/../../sentinel/file", Array("pwned".utf8))
        }
        let work = scratch.mkdir("work")
        expectError(.invalidArgument, containing: "escapes the layer root") { _ = try unpack(scratch.sub("evil.tar"), work + "/root") }
        XCTAssertFalse(exists(work + "/root"), "a failed unpack leaves no destination")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: work), [], "and no temporary directory")
        XCTAssertFalse(exists(work + "/evil"))
        XCTAssertFalse(exists(scratch.sub("evil")))
        assertSentinelIntact(guardDir)
    }

    func testAbsolutePathsAreContainedInTheRoot() throws {
        let scratch = Scratch()
        let name = "berth-abs-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try makeTar(scratch.sub("abs.tar")) { w in
            try w.addFile("/tmp/\(name)", Array("x".utf8))
            try w.addFile("/../../\(name)", Array("y".utf8))
        }
        let root = scratch.sub("root")
        _ = try unpack(scratch.sub("abs.tar"), root)
        XCTAssertEqual(text(root + "/tmp/" + name), "x")
        XCTAssertEqual(text(root + "/" + name), "y")
        XCTAssertFalse(exists("/tmp/" + name))
        XCTAssertFalse(exists("/" + name))
    }

    func testSymlinkToRootInTheLayerCannotCarryEntriesOutside() throws {
        let scratch = Scratch()
        let guardDir = sentinel(scratch)
        let name = "berth-link-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try makeTar(scratch.sub("link.tar")) { w in
            try w.addSymlink("a", target: "/")
            try w.addFile("a/tmp/\(name)", Array("x".utf8))
            try w.addSymlink("up", target: "../../../..")
            try w.addFile("up/\(name)", Array("y".utf8))
            try w.addSymlink("s", target: guardDir)
            try w.addFile("s/file", Array("pwned".utf8))
            try w.addSymlink("s2", target: guardDir + "/file")
            try w.addFile("s2", Array("replaced".utf8))
        }
        let root = scratch.sub("root")
        _ = try unpack(scratch.sub("link.tar"), root)
        // Followed as if the root were "/": everything lands inside it.
        XCTAssertEqual(text(root + "/tmp/" + name), "x")
        XCTAssertEqual(text(root + "/" + name), "y")
        XCTAssertEqual(text(root + guardDir + "/file"), "pwned")
        // An entry replaces a symlink in its place instead of writing through it.
        XCTAssertEqual(lstatOf(root + "/s2").map { $0.st_mode & S_IFMT }, S_IFREG)
        XCTAssertEqual(text(root + "/s2"), "replaced")
        XCTAssertFalse(exists("/tmp/" + name))
        XCTAssertFalse(exists("/" + name))
        assertSentinelIntact(guardDir)
    }

    func testHardlinkThatEscapesIsRefused() throws {
        let scratch = Scratch()
        let guardDir = sentinel(scratch)
        try makeTar(scratch.sub("hard.tar")) { w in
            try w.addHardlink("passwd", target: "../../etc/passwd")
        }
        let work = scratch.mkdir("work")
        expectError(.invalidArgument, containing: "escapes the layer root") { _ = try unpack(scratch.sub("hard.tar"), work + "/root") }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: work), [])

        // Through a symlink the target resolves inside the root, where it does not exist.
        try makeTar(scratch.sub("hard2.tar")) { w in
            try w.addSymlink("s", target: guardDir)
            try w.addHardlink("h", target: "s/file")
        }
        expectError(.invalidArgument, containing: "not found") { _ = try unpack(scratch.sub("hard2.tar"), work + "/root") }
        // A hardlink to a symlink links the symlink, never what it points at.
        try makeTar(scratch.sub("hard3.tar")) { w in
            try w.addSymlink("s", target: guardDir + "/file")
            try w.addHardlink("h", target: "s")
        }
        _ = try unpack(scratch.sub("hard3.tar"), work + "/root")
        XCTAssertEqual(lstatOf(work + "/root/h").map { $0.st_mode & S_IFMT }, S_IFLNK)
        XCTAssertEqual(lstatOf(guardDir + "/file")?.st_nlink, 1)
        assertSentinelIntact(guardDir)
    }

    func testWhiteoutsCannotDeleteOutsideTheRoot() throws {
        let scratch = Scratch()
        let guardDir = sentinel(scratch)
        for whiteouts in [WhiteoutFormat.apply, .overlay] where whiteouts == .apply || isRoot {
            try makeTar(scratch.sub("wh.tar")) { w in
                try w.addSymlink("s", target: guardDir)
                try w.addFile("s/.wh.file", [])
                try w.addFile("s/.wh..wh..opq", [])
            }
            let root = scratch.sub("root-\(whiteouts)")
            _ = try unpack(scratch.sub("wh.tar"), root, whiteouts)
            assertSentinelIntact(guardDir)
            try makeTar(scratch.sub("wh2.tar")) { w in try w.addFile("../sentinel/.wh.file", []) }
            expectError(.invalidArgument) { _ = try unpack(scratch.sub("wh2.tar"), root + "2", whiteouts) }
            try makeTar(scratch.sub("wh3.tar")) { w in try w.addFile("x/.wh..", []) }
            expectError(.invalidArgument, containing: "invalid whiteout") { _ = try unpack(scratch.sub("wh3.tar"), root + "3", whiteouts) }
            assertSentinelIntact(guardDir)
        }
    }

    func testFailedUnpackOrDiffIDMismatchLeavesNothingAndAnExistingDestinationIsRefused() throws {
        let scratch = Scratch()
        try makeTar(scratch.sub("ok.tar")) { w in try w.addFile("a", Array("a".utf8)) }
        let work = scratch.mkdir("work")
        expectError(.invalidArgument, containing: "DiffID mismatch") {
            _ = try LayerUnpacker().unpack(path: scratch.sub("ok.tar"), into: work + "/root", expectedDiffID: Digest.of([]))
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: work), [])
        // Truncated and non-tar input.
        let bytes = readFile(scratch.sub("ok.tar"))!
        XCTAssertTrue(FileManager.default.createFile(atPath: scratch.sub("short.tar"), contents: Data(bytes.prefix(600))))
        expectError(.invalidArgument) { _ = try unpack(scratch.sub("short.tar"), work + "/root") }
        XCTAssertTrue(FileManager.default.createFile(atPath: scratch.sub("junk"), contents: Data(repeating: 0x41, count: 5000)))
        expectError(.invalidArgument) { _ = try unpack(scratch.sub("junk"), work + "/root") }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: work), [])
        _ = try unpack(scratch.sub("ok.tar"), work + "/root")
        expectError(.conflict, containing: "already exists") { _ = try unpack(scratch.sub("ok.tar"), work + "/root") }
    }

    func testTarWriterKeepsHostileNamesSoTheTestsReallyExerciseThem() throws {
        let scratch = Scratch()
        try makeTar(scratch.sub("t.tar")) { w in
            try w.addFile("../evil", [])
            try w.addFile("/abs", [])
            try w.addHardlink("h", target: "../../etc/passwd")
        }
        let fd = open(scratch.sub("t.tar"), O_RDONLY)
        defer { close(fd) }
        let r = try TarReader(fd: fd, what: "t")
        var names: [String] = []
        while let h = try r.next() { names.append(h.path + (h.linkTarget.map { " -> " + $0 } ?? "")) }
        XCTAssertEqual(names, ["../evil", "/abs", "h -> ../../etc/passwd"])
    }
}
