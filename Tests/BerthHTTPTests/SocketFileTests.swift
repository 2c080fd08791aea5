import BerthTestSupport
import Glibc
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
