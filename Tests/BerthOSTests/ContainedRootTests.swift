import BerthOS
import Glibc
import XCTest

/// A hostile tree (symlinks out of it, fifos, devices, huge files) read and written through
/// ContainedRoot: nothing outside the root is read or changed, and nothing blocks.
final class ContainedRootTests: XCTestCase {
    var dir = ""
    var root: String { dir + "/root" }
    /// A host file outside the root whose content must never come back.
    var secret: String { dir + "/secret" }

    override func setUpWithError() throws {
        var template = Array("/tmp/berth-contained-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw XCTSkip("mkdtemp failed") }
        dir = String(cString: p)
        try FileSystem.makeDirectories(root + "/etc", mode: 0o755)
        try FileSystem.writeAtomically(secret, Array("host:x:4242:4242::/:/bin/sh\n".utf8))
    }

    override func tearDown() { try? FileSystem.removeTree(dir) }

    private func text(_ bytes: [UInt8]?) -> String? { bytes.map { String(decoding: $0, as: UTF8.self) } }

    func testReadFileReturnsARegularFileAndNilForAMissingOne() throws {
        try FileSystem.writeAtomically(root + "/etc/passwd", Array("root:x:0:0::/:/bin/sh\n".utf8))
        let r = try ContainedRoot(root)
        XCTAssertEqual(text(try r.readFile("/etc/passwd", limit: 1 << 20)), "root:x:0:0::/:/bin/sh\n")
        XCTAssertNil(try r.readFile("/etc/group", limit: 1 << 20))
        XCTAssertNil(try r.readFile("/etc/passwd/x", limit: 1 << 20), "a file on the way is no directory")
    }

    func testAbsoluteAndRelativeSymlinksResolveInsideTheRootNeverToTheHostFile() throws {
        symlink(secret, root + "/etc/passwd")
        symlink("../../../../../../" + secret, root + "/etc/group")
        let r = try ContainedRoot(root)
        XCTAssertNil(try r.readFile("/etc/passwd", limit: 1 << 20, finalSymlink: .followInRoot))
        XCTAssertNil(try r.readFile("/etc/group", limit: 1 << 20, finalSymlink: .followInRoot))
        // The same names inside the root are what the links reach.
        try FileSystem.makeDirectories(root + secret.dropLast("/secret".count), mode: 0o755)
        try FileSystem.writeAtomically(root + secret, Array("inside\n".utf8))
        XCTAssertEqual(text(try r.readFile("/etc/passwd", limit: 1 << 20, finalSymlink: .followInRoot)), "inside\n")
        XCTAssertEqual(text(try r.readFile("/etc/group", limit: 1 << 20, finalSymlink: .followInRoot)), "inside\n")
        XCTAssertThrowsError(try r.readFile("/etc/passwd", limit: 1 << 20)) {
            XCTAssertTrue("\($0)".contains("a symlink, not a regular file"), "\($0)")
        }
    }

    func testSymlinkedDirectoriesAndMagicLinksStayInside() throws {
        symlink(dir, root + "/up")
        symlink("/proc/self/root", root + "/proc")
        let r = try ContainedRoot(root)
        XCTAssertNil(try r.readFile("/up/secret", limit: 1 << 20))
        XCTAssertNil(try r.readFile("/../../secret", limit: 1 << 20))
        // proc -> /proc/self/root resolves to the link itself inside the root: a loop, refused.
        XCTAssertThrowsError(try r.readFile("/proc" + secret, limit: 1 << 20)) {
            XCTAssertEqual(($0 as? SystemError)?.errno, ELOOP)
        }
    }

    func testAFifoIsRefusedWithoutBlocking() throws {
        XCTAssertEqual(mkfifo(root + "/etc/passwd", 0o644), 0)
        let r = try ContainedRoot(root)
        let start = Timestamp.nowNanoseconds()
        XCTAssertThrowsError(try r.readFile("/etc/passwd", limit: 1 << 20)) {
            XCTAssertTrue("\($0)".contains("a fifo, not a regular file"), "\($0)")
        }
        XCTAssertLessThan(Timestamp.nowNanoseconds() - start, 1_000_000_000)
    }

    func testADeviceIsRefusedWithoutBeingOpened() throws {
        guard mknod(root + "/etc/passwd", S_IFCHR | 0o644, dev_t(1 << 8 | 5)) == 0 else { throw XCTSkip("mknod needs root") }
        symlink("/dev/zero", root + "/etc/group")
        let r = try ContainedRoot(root)
        XCTAssertThrowsError(try r.readFile("/etc/passwd", limit: 1 << 20)) {
            XCTAssertTrue("\($0)".contains("a character device, not a regular file"), "\($0)")
        }
        XCTAssertNil(try r.readFile("/etc/group", limit: 1 << 20, finalSymlink: .followInRoot))
    }

    func testTheSizeCapIsEnforced() throws {
        try FileSystem.writeAtomically(root + "/etc/passwd", [UInt8](repeating: 65, count: 4097))
        let r = try ContainedRoot(root)
        XCTAssertThrowsError(try r.readFile("/etc/passwd", limit: 4096)) {
            XCTAssertEqual(($0 as? SystemError)?.errno, EFBIG)
        }
        XCTAssertEqual(try r.readFile("/etc/passwd", limit: 4097)?.count, 4097)
    }

    func testWriteFileReplacesASymlinkInsteadOfWritingThroughIt() throws {
        symlink(secret, root + "/etc/hosts")
        let r = try ContainedRoot(root)
        try r.writeFile("/etc/hosts", Array("127.0.0.1 localhost\n".utf8))
        XCTAssertEqual(try FileSystem.readString(secret), "host:x:4242:4242::/:/bin/sh\n")
        XCTAssertEqual(try FileSystem.readString(root + "/etc/hosts"), "127.0.0.1 localhost\n")
        var st = stat()
        XCTAssertEqual(lstat(root + "/etc/hosts", &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFREG)
    }

    func testWriteFileThroughASymlinkedDirectoryLandsInsideTheRoot() throws {
        try FileSystem.makeDirectories(dir + "/outside", mode: 0o755)
        rmdir(root + "/etc")
        symlink(dir + "/outside", root + "/etc")
        let r = try ContainedRoot(root)
        XCTAssertThrowsError(try r.writeFile("/etc/hosts", Array("x".utf8)))
        XCTAssertFalse(FileSystem.exists(dir + "/outside/hosts"))
    }

    func testMakeDirectoriesNeverCreatesOutsideTheRoot() throws {
        symlink(dir + "/outside", root + "/a")
        symlink("/etc", root + "/b")
        let r = try ContainedRoot(root)
        XCTAssertThrowsError(try r.makeDirectories("/a/x/y"))
        XCTAssertFalse(FileSystem.exists(dir + "/outside"))
        let fd = try r.makeDirectories("/b/x/y")
        close(fd)
        XCTAssertTrue(FileSystem.isDirectory(root + "/etc/x/y"))
    }

    func testStatusAndOpenDirectory() throws {
        symlink("/etc", root + "/e")
        let r = try ContainedRoot(root)
        XCTAssertEqual((try r.status("/e")?.st_mode ?? 0) & S_IFMT, S_IFLNK)
        XCTAssertEqual((try r.status("/e", finalSymlink: .followInRoot)?.st_mode ?? 0) & S_IFMT, S_IFDIR)
        XCTAssertNil(try r.status("/missing"))
        let fd = try XCTUnwrap(try r.openDirectory("/e"))
        close(fd)
        XCTAssertNil(try r.openDirectory("/missing"))
    }

    func testDiskSpaceIsReportedAndDescribed() throws {
        XCTAssertGreaterThan(try DiskSpace.available(at: dir), 0)
        XCTAssertEqual(DiskSpace.describe(8 << 30), "8 GiB")
        XCTAssertEqual(DiskSpace.describe(1536), "1.5 KiB")
        XCTAssertEqual(DiskSpace.describe(100), "100 bytes")
    }
}
