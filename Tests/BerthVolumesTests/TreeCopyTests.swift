import BerthOS
import Glibc
import XCTest
@testable import BerthVolumes

/// Copy-up of image content into a volume facing a hostile image: sparse files stay sparse,
/// a tree nested without limit is refused instead of exhausting the stack or descriptors.
final class TreeCopyTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        var template = Array("/tmp/berth-treecopy-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw XCTSkip("mkdtemp failed") }
        dir = String(cString: p)
        try FileSystem.makeDirectories(dir + "/image/data")
        try FileSystem.makeDirectories(dir + "/volume")
    }

    override func tearDown() { try? FileSystem.removeTree(dir) }

    func testHolesOfASparseFileStayHoles() throws {
        // Large enough to see holes written out, small enough that such a regression cannot
        // fill the shared disk.
        let size: Int64 = 256 << 20
        let fd = open(dir + "/image/data/sparse", O_WRONLY | O_CREAT, 0o644)
        XCTAssertEqual(ftruncate(fd, off_t(size)), 0)
        _ = Array("tail".utf8).withUnsafeBytes { pwrite(fd, $0.baseAddress, 4, off_t(size - 4)) }
        _ = Array("head".utf8).withUnsafeBytes { pwrite(fd, $0.baseAddress, 4, 0) }
        close(fd)
        try TreeCopy.copy(root: dir + "/image", path: "/data", into: dir + "/volume")
        var st = stat()
        XCTAssertEqual(stat(dir + "/volume/sparse", &st), 0)
        XCTAssertEqual(Int64(st.st_size), size)
        XCTAssertLessThan(Int64(st.st_blocks) * 512, 1 << 20, "the holes were written out")
        let copy = open(dir + "/volume/sparse", O_RDONLY)
        defer { close(copy) }
        var bytes = [UInt8](repeating: 0, count: 4)
        XCTAssertEqual(pread(copy, &bytes, 4, 0), 4)
        XCTAssertEqual(bytes, Array("head".utf8))
        XCTAssertEqual(pread(copy, &bytes, 4, off_t(size - 4)), 4)
        XCTAssertEqual(bytes, Array("tail".utf8))
        XCTAssertEqual(pread(copy, &bytes, 4, off_t(size / 2)), 4)
        XCTAssertEqual(bytes, [0, 0, 0, 0])
    }

    func testATreeNestedBeyondTheLimitIsRefused() throws {
        let shallow = DirectorySize.of(dir + "/image/data")
        var fd = open(dir + "/image/data", O_RDONLY | O_DIRECTORY)
        for _ in 0...TreeCopy.maxDepth {
            XCTAssertEqual(mkdirat(fd, "d", 0o755), 0)
            let next = openat(fd, "d", O_RDONLY | O_DIRECTORY)
            close(fd)
            fd = next
        }
        let deep = openat(fd, "deep", O_CREAT | O_WRONLY, 0o644)
        XCTAssertEqual(write(deep, "12345", 5), 5)
        close(deep)
        close(fd)
        XCTAssertThrowsError(try TreeCopy.copy(root: dir + "/image", path: "/data", into: dir + "/volume")) {
            XCTAssertTrue("\($0)".contains("nested deeper than"), "\($0)")
        }
        XCTAssertEqual(DirectorySize.of(dir + "/image/data"), shallow, "the levels past the bound are not walked")
    }

    func testAFifoInTheImageIsRecreatedNeverOpened() throws {
        XCTAssertEqual(mkfifo(dir + "/image/data/pipe", 0o600), 0)
        try TreeCopy.copy(root: dir + "/image", path: "/data", into: dir + "/volume")
        var st = stat()
        XCTAssertEqual(lstat(dir + "/volume/pipe", &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFIFO)
    }
}
