import Dispatch
import Glibc
import Synchronization
import XCTest

@testable import BerthHTTP

final class SocketFileTests: XCTestCase {
    func testStaleSocketIsReplacedButLiveOneIsNot() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path + "/nested/dir/api.sock"
        // A socket file nobody listens on: what a killed daemon leaves behind.
        try UnixSocketFile.makeDirectories(dir.path + "/nested/dir")
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            let bytes = Array(path.utf8)
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        XCTAssertEqual(bound, 0)
        close(fd)
        XCTAssertFalse(UnixSocketFile.answers(path))

        let first = HTTPServer(router: Router())
        XCTAssertNoThrow(try blocking { try await first.listen(.unix(path: path), access: UnixSocketAccess(group: nil)) })
        XCTAssertTrue(UnixSocketFile.answers(path))

        let second = HTTPServer(router: Router())
        XCTAssertThrowsError(try blocking { try await second.listen(.unix(path: path), access: UnixSocketAccess(group: nil)) }) { error in
            XCTAssertTrue("\(error)".contains("another daemon is listening"), "\(error)")
        }
        XCTAssertTrue(UnixSocketFile.answers(path), "the live socket was left alone")
        try blocking { await first.shutdown() }
    }

    func testRegularFileInTheWayIsRefused() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path + "/api.sock"
        try "not a socket".write(toFile: path)
        let server = HTTPServer(router: Router())
        XCTAssertThrowsError(try blocking { try await server.listen(.unix(path: path)) }) { error in
            XCTAssertTrue("\(error)".contains("is not a socket"), "\(error)")
        }
    }

    func testRequiredGroupThatDoesNotExistIsAnError() throws {
        let dir = try TemporaryDirectory()
        let server = HTTPServer(router: Router())
        let path = dir.path + "/api.sock"
        XCTAssertThrowsError(try blocking {
            try await server.listen(.unix(path: path), access: UnixSocketAccess(group: "no-such-group-berth", groupRequired: true))
        })
        var st = stat()
        XCTAssertNotEqual(lstat(path, &st), 0, "no socket left behind")
    }

    func testTCPPortZeroReportsTheBoundPort() throws {
        let server = HTTPServer(router: Router())
        let bound = try blocking { try await server.listen(.tcp(host: "127.0.0.1", port: 0)) }
        guard case .tcp(_, let port) = bound else { return XCTFail("\(bound)") }
        XCTAssertGreaterThan(port, 0)
        try blocking { await server.shutdown() }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A directory under /tmp removed with everything in it when released.
final class TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/berth-http-test-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw TestFailure("mkdtemp failed") }
        path = String(cString: p)
    }

    deinit { removeTree(path) }
}

func removeTree(_ path: String) {
    var st = stat()
    guard lstat(path, &st) == 0 else { return }
    if (st.st_mode & S_IFMT) == S_IFDIR, let dir = opendir(path) {
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { removeTree(path + "/" + name) }
        }
        closedir(dir)
        rmdir(path)
    } else {
        unlink(path)
    }
}

extension String {
    func write(toFile path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw TestFailure("open \(path)") }
        defer { close(fd) }
        let bytes = Array(utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    }
}

/// Runs async code from a synchronous test. The tests talk to the server with blocking socket
/// calls, which must not sit on the cooperative pool that the route handlers need.
@discardableResult
func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let result = Mutex<Result<T, any Error>?>(nil)
    let done = DispatchSemaphore(value: 0)
    Task {
        let r: Result<T, any Error>
        do { r = .success(try await body()) } catch { r = .failure(error) }
        result.withLock { $0 = r }
        done.signal()
    }
    done.wait()
    return try result.withLock { $0! }.get()
}
