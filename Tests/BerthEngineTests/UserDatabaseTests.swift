@testable import BerthEngine
import BerthOS
import Glibc
import XCTest

/// /etc/passwd and /etc/group read from image layers and live root filesystems a container
/// controls: overlay semantics for layers, and never a host file, a fifo or a device.
final class UserDatabaseTests: XCTestCase {
    var dir = ""
    var top: String { dir + "/top" }
    var lower: String { dir + "/lower" }

    override func setUpWithError() throws {
        var template = Array("/tmp/berth-userdb-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw XCTSkip("mkdtemp failed") }
        dir = String(cString: p)
        try FileSystem.makeDirectories(top + "/etc")
        try FileSystem.makeDirectories(lower + "/etc")
        try FileSystem.writeAtomically(lower + "/etc/passwd", Array("low:x:7:7::/:/bin/sh\n".utf8))
        try FileSystem.writeAtomically(dir + "/host-passwd", Array("host:x:4242:4242::/:/bin/sh\n".utf8))
    }

    override func tearDown() { try? FileSystem.removeTree(dir) }

    func testTheTopmostLayerWinsAndAMissingFileFallsThrough() throws {
        XCTAssertEqual(UserDatabase(layers: [top, lower]).user("low")?.uid, 7)
        try FileSystem.writeAtomically(top + "/etc/passwd", Array("up:x:8:8::/:/bin/sh\n".utf8))
        let db = UserDatabase(layers: [top, lower])
        XCTAssertEqual(db.user("up")?.uid, 8)
        XCTAssertNil(db.user("low"))
    }

    func testAWhiteoutAFileOrAnOpaqueDirectoryAboveHidesTheLowerFile() throws {
        try XCTSkipUnless(geteuid() == 0, "whiteouts and trusted.* attributes need root")
        XCTAssertEqual(mknod(top + "/etc/passwd", S_IFCHR | 0o600, 0), 0)
        XCTAssertNil(UserDatabase(layers: [top, lower]).user("low"), "whiteout")
        unlink(top + "/etc/passwd")
        XCTAssertEqual(Self.setxattr(top + "/etc", "trusted.overlay.opaque", "y", 1, 0), 0)
        XCTAssertNil(UserDatabase(layers: [top, lower]).user("low"), "opaque directory")
        try FileSystem.removeTree(top + "/etc")
        try FileSystem.writeAtomically(top + "/etc", Array("a file".utf8))
        XCTAssertNil(UserDatabase(layers: [top, lower]).user("low"), "a file in place of the directory")
    }

    func testASymlinkToAHostFileResolvesInsideTheLayerOnly() throws {
        symlink(dir + "/host-passwd", top + "/etc/passwd")
        XCTAssertNil(UserDatabase(layers: [top, lower]).user("host"))
        symlink("../../../../../../../" + dir + "/host-passwd", top + "/etc/group")
        XCTAssertNil(UserDatabase(rootfs: top).user("host"))
        // A link that stays in the tree is followed, as Docker's FollowSymlinkInScope does.
        try FileSystem.writeAtomically(top + "/etc/real", Array("in:x:9:9::/:/bin/sh\n".utf8))
        unlink(top + "/etc/passwd")
        symlink("/etc/real", top + "/etc/passwd")
        XCTAssertEqual(UserDatabase(rootfs: top).user("in")?.uid, 9)
    }

    func testAFifoOrADeviceIsIgnoredAndANamedLookupSaysWhy() throws {
        XCTAssertEqual(mkfifo(top + "/etc/passwd", 0o644), 0)
        let db = UserDatabase(rootfs: top)
        XCTAssertEqual(db.passwd, "")
        XCTAssertTrue(db.ignored["/etc/passwd"]?.contains("a fifo, not a regular file") == true, "\(db.ignored)")
        XCTAssertThrowsError(try db.checkNamesResolvable("daemon", groupAdd: [])) {
            XCTAssertTrue("\($0)".contains("unable to find user daemon"), "\($0)")
        }
        XCTAssertNoThrow(try db.checkNamesResolvable("1000:1000", groupAdd: ["5"]))
        if geteuid() == 0 {
            XCTAssertEqual(mknod(top + "/etc/group", S_IFCHR | 0o644, dev_t(1 << 8 | 5)), 0)
            let db = UserDatabase(layers: [top, lower])
            XCTAssertTrue(db.ignored["/etc/group"]?.contains("a character device") == true, "\(db.ignored)")
            XCTAssertThrowsError(try db.checkNamesResolvable("0:wheel", groupAdd: []))
        }
    }

    func testAFileAboveTheCapIsIgnored() throws {
        try FileSystem.writeAtomically(top + "/etc/passwd", [UInt8](repeating: 10, count: UserDatabase.limit + 1))
        XCTAssertNotNil(UserDatabase(rootfs: top).ignored["/etc/passwd"])
    }

    private typealias SetXattr = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafeRawPointer?, Int, Int32) -> Int32
    private static let setxattr: SetXattr = unsafeBitCast(dlsym(dlopen(nil, RTLD_NOW), "setxattr")!, to: SetXattr.self)
}
