import BerthOS
import CBerthSys
import Glibc
import XCTest
@testable import BerthVolumes

final class VolumeStoreTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        var template = Array("/tmp/berth-volumes-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw XCTSkip("mkdtemp failed") }
        dir = String(cString: p)
    }

    override func tearDown() {
        // A failed test may leave a mounted volume behind.
        if let text = try? FileSystem.readString("/proc/self/mountinfo") {
            for line in text.split(separator: "\n") {
                let f = line.split(separator: " ")
                if f.count > 4, f[4].hasPrefix(dir) { umount2(String(f[4]), Int32(MNT_DETACH)) }
            }
        }
        try? FileSystem.removeTree(dir)
    }

    func testCreateGetListRemoveRoundTrip() throws {
        let store = try VolumeStore(root: dir + "/volumes")
        let (v, created) = try store.create(name: "data", labels: ["a": "b"])
        XCTAssertTrue(created)
        XCTAssertEqual(v.driver, "local")
        XCTAssertFalse(v.anonymous)
        XCTAssertTrue(FileSystem.isDirectory(dir + "/volumes/data/_data"))
        XCTAssertEqual(try store.get("data"), v)
        XCTAssertEqual(store.list().map(\.name), ["data"])
        try store.remove("data")
        XCTAssertFalse(FileSystem.exists(dir + "/volumes/data"))
        XCTAssertEqual(store.list().count, 0)
    }

    func testCreateOfAnExistingNameReturnsItUnchanged() throws {
        let store = try VolumeStore(root: dir)
        let first = try store.create(name: "v1", labels: ["x": "1"]).volume
        try FileSystem.writeAtomically(store.mountpoint("v1") + "/keep", [UInt8]())
        let again = try store.create(name: "v1", labels: ["x": "2"])
        XCTAssertFalse(again.created)
        XCTAssertEqual(again.volume, first)
        XCTAssertTrue(FileSystem.exists(store.mountpoint("v1") + "/keep"))
    }

    func testInvalidNamesUnknownVolumesAndOptionsAreRefusedInDockersWords() throws {
        let store = try VolumeStore(root: dir)
        for bad in ["a", "-x", "has space", "../up", ".hidden", "a/b"] {
            XCTAssertThrowsError(try store.create(name: bad)) { e in
                XCTAssertEqual((e as? VolumeError)?.code, .invalidArgument, bad)
            }
        }
        XCTAssertThrowsError(try store.get("nope")) { e in
            XCTAssertEqual(e as? VolumeError, VolumeError(.notFound, "get nope: no such volume"))
        }
        XCTAssertThrowsError(try store.remove("nope")) { e in XCTAssertEqual((e as? VolumeError)?.code, .notFound) }
        XCTAssertThrowsError(try store.create(name: "v2", options: ["size": "1g"])) { e in
            XCTAssertEqual(e as? VolumeError, VolumeError(.invalidArgument, "create v2: invalid option: \"size\""))
        }
        XCTAssertThrowsError(try store.create(name: "v2", options: ["type": "tmpfs"])) { e in
            XCTAssertEqual(e as? VolumeError, VolumeError(.invalidArgument, "create v2: missing required option: \"device\""))
        }
        XCTAssertThrowsError(try store.create(name: "v2", driver: "nfs")) { e in XCTAssertEqual((e as? VolumeError)?.code, .notFound) }
        XCTAssertEqual(store.list().count, 0, "a refused create leaves nothing")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }

    func testAnonymousVolumesCarryDockersLabel() throws {
        let store = try VolumeStore(root: dir)
        let name = VolumeStore.randomName()
        XCTAssertEqual(name.count, 64)
        let v = try store.create(name: name, labels: [VolumeStore.anonymousLabel: ""]).volume
        XCTAssertTrue(v.anonymous)
    }

    func testLeftoversOfACrashAreNotVolumesAndAreCleared() throws {
        let store = try VolumeStore(root: dir)
        try FileSystem.makeDirectories(dir + "/.create-x-1/_data")
        try FileSystem.makeDirectories(dir + "/.remove-y-2/_data")
        XCTAssertEqual(store.list().count, 0)
        store.removeLeftovers()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }

    func testFillCopiesContentOwnersModesSymlinksAndXattrsWithoutFollowingSymlinks() throws {
        let store = try VolumeStore(root: dir + "/volumes")
        let image = dir + "/image"
        let outside = dir + "/outside"
        try FileSystem.makeDirectories(image + "/etc/sub")
        try FileSystem.makeDirectories(outside)
        try FileSystem.writeAtomically(outside + "/secret", Array("host secret".utf8))
        try FileSystem.writeAtomically(image + "/etc/passwd", Array("root:x:0:0\n".utf8), mode: 0o640)
        try FileSystem.writeAtomically(image + "/etc/sub/tool", Array("#!/bin/sh\n".utf8), mode: 0o755)
        chmod(image + "/etc/sub/tool", 0o4755)
        chmod(image + "/etc", 0o750)
        // A symlink in the tree is copied as a symlink, never read through.
        symlink(outside + "/secret", image + "/etc/escape")
        // The mount point itself reached through an absolute symlink resolves inside the image.
        symlink("/etc", image + "/link")
        mkfifo(image + "/etc/fifo", 0o600)
        chmod(image + "/etc/fifo", 0o620)
        if geteuid() == 0 {
            chown(image + "/etc/passwd", 1234, 5678)
            chown(image + "/etc", 42, 43)
        }

        _ = try store.create(name: "etc")
        try store.fill("etc", from: image, path: "/link")
        let data = store.mountpoint("etc")
        XCTAssertEqual(try FileSystem.readString(data + "/passwd"), "root:x:0:0\n")
        var st = stat()
        XCTAssertEqual(lstat(data + "/passwd", &st), 0)
        XCTAssertEqual(st.st_mode & 0o7777, 0o640)
        XCTAssertEqual(lstat(data + "/sub/tool", &st), 0)
        XCTAssertEqual(st.st_mode & 0o7777, 0o4755, "set-id bits survive the chown")
        XCTAssertEqual(lstat(data + "/escape", &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFLNK)
        XCTAssertEqual(lstat(data + "/fifo", &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFIFO)
        XCTAssertEqual(st.st_mode & 0o7777, 0o620)
        XCTAssertEqual(lstat(data, &st), 0)
        XCTAssertEqual(st.st_mode & 0o7777, 0o750, "the volume takes the directory's mode")
        if geteuid() == 0 {
            XCTAssertEqual(lstat(data + "/passwd", &st), 0)
            XCTAssertEqual([st.st_uid, st.st_gid], [1234, 5678])
            XCTAssertEqual(lstat(data, &st), 0)
            XCTAssertEqual([st.st_uid, st.st_gid], [42, 43])
        }
        XCTAssertGreaterThan(store.size("etc"), 0)
    }

    func testFillCopiesXattrsOfFiles() throws {
        let store = try VolumeStore(root: dir + "/volumes")
        let image = dir + "/image"
        try FileSystem.makeDirectories(image + "/d")
        try FileSystem.writeAtomically(image + "/d/f", Array("x".utf8))
        let fd = open(image + "/d/f", O_RDONLY)
        defer { close(fd) }
        guard fsetxattr(fd, "user.berth", "v1", 2, 0) == 0 else {
            throw XCTSkip("the test directory's filesystem has no user xattrs")
        }
        _ = try store.create(name: "x1")
        try store.fill("x1", from: image, path: "/d")
        let copy = open(store.mountpoint("x1") + "/f", O_RDONLY)
        defer { close(copy) }
        var buf = [UInt8](repeating: 0, count: 16)
        let n = fgetxattr(copy, "user.berth", &buf, buf.count)
        XCTAssertEqual(n, 2)
        XCTAssertEqual(String(decoding: buf[0..<max(n, 0)], as: UTF8.self), "v1")
    }

    func testFillNeverLeavesTheSourceRoot() throws {
        let store = try VolumeStore(root: dir + "/volumes")
        let image = dir + "/image"
        try FileSystem.makeDirectories(image)
        try FileSystem.makeDirectories(dir + "/host/data")
        try FileSystem.writeAtomically(dir + "/host/data/secret", Array("s".utf8))
        // Relative and absolute escapes both land inside the image, where nothing exists.
        symlink("../../host/data", image + "/rel")
        symlink(dir + "/host/data", image + "/abs")
        _ = try store.create(name: "v1")
        for path in ["/rel", "/abs", "/../host/data", "/missing", "/rel/x"] {
            try store.fill("v1", from: image, path: path)
            XCTAssertTrue(store.isEmpty("v1"), path)
        }
    }

    func testTmpfsOptionsAreMountedWhileActiveAndTheMountGoesWithTheVolume() throws {
        guard geteuid() == 0 else { throw XCTSkip("mounting needs root") }
        let store = try VolumeStore(root: dir)
        _ = try store.create(name: "mem", options: ["type": "tmpfs", "device": "tmpfs", "o": "size=1m,mode=0700"])
        XCTAssertFalse(LocalMount.isMountPoint(store.mountpoint("mem")))
        try store.activate("mem")
        try store.activate("mem")  // once only
        let mounts = try FileSystem.readString("/proc/self/mountinfo").split(separator: "\n")
            .filter { $0.split(separator: " ")[4] == store.mountpoint("mem") }
        XCTAssertEqual(mounts.count, 1)
        XCTAssertTrue(mounts[0].contains(" tmpfs "), String(mounts[0]))
        XCTAssertTrue(mounts[0].contains("size=1024k"), String(mounts[0]))
        try store.deactivate("mem")
        XCTAssertFalse(LocalMount.isMountPoint(store.mountpoint("mem")))
        try store.activate("mem")
        try store.remove("mem")
        XCTAssertFalse(LocalMount.isMountPoint(store.mountpoint("mem")))
    }

    func testMountOptionStringSplitsIntoFlagsAndData() {
        let (flags, data) = LocalMount.parse("ro,nosuid,size=10m,uid=1000,bind")
        XCTAssertEqual(flags, UInt(MS_RDONLY | MS_NOSUID | MS_BIND))
        XCTAssertEqual(data, "size=10m,uid=1000")
    }
}
