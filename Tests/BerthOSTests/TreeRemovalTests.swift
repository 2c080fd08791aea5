import BerthOS
import Glibc
import XCTest

final class TreeRemovalTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        var template = Array("/tmp/berth-rm-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw SystemError("mkdtemp") }
        dir = String(cString: made)
    }

    override func tearDown() {
        _ = umount2(dir + "/t/mnt", Int32(MNT_DETACH))
        try? FileSystem.removeTree(dir)
    }

    func testATreeDeeperThanTheDescriptorLimitIsRemoved() throws {
        // Deeper than RLIMIT_NOFILE allows descriptors: a walk holding one per level fails.
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let levels = Int(min(limit.rlim_cur, 100_000)) + 100
        XCTAssertEqual(mkdir(dir + "/t", 0o755), 0)
        let top = open(dir, O_RDONLY | O_DIRECTORY)
        defer { close(top) }
        for _ in 0..<levels {  // wrap t in a new directory each round: no long path is ever named
            XCTAssertEqual(mkdirat(top, "n", 0o755), 0)
            XCTAssertEqual(renameat(top, "t", top, "n/t"), 0)
            XCTAssertEqual(renameat(top, "n", top, "t"), 0)
        }
        try FileSystem.removeTree(dir + "/t")
        XCTAssertFalse(FileSystem.exists(dir + "/t"))
    }

    func testSymlinksAreRemovedNotFollowed() throws {
        XCTAssertEqual(mkdir(dir + "/outside", 0o755), 0)
        try FileSystem.writeAtomically(dir + "/outside/keep", Array("x".utf8))
        XCTAssertEqual(mkdir(dir + "/t", 0o755), 0)
        XCTAssertEqual(symlink(dir + "/outside", dir + "/t/link"), 0)
        XCTAssertEqual(symlink("../outside", dir + "/t/rel"), 0)
        try FileSystem.removeTree(dir + "/t")
        XCTAssertFalse(FileSystem.exists(dir + "/t"))
        XCTAssertTrue(FileSystem.exists(dir + "/outside/keep"))
    }

    func testAFilesystemMountedInsideIsNeitherEnteredNorRemoved() throws {
        guard getuid() == 0 else { throw XCTSkip("mounting needs root") }
        XCTAssertEqual(mkdir(dir + "/t", 0o755), 0)
        XCTAssertEqual(mkdir(dir + "/t/mnt", 0o755), 0)
        XCTAssertEqual(mount("tmpfs", dir + "/t/mnt", "tmpfs", 0, nil), 0)
        try FileSystem.writeAtomically(dir + "/t/mnt/inside", Array("x".utf8))
        XCTAssertThrowsError(try FileSystem.removeTree(dir + "/t"))
        XCTAssertTrue(FileSystem.exists(dir + "/t/mnt/inside"))
    }
}
