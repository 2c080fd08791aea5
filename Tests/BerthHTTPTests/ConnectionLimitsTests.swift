import BerthTestSupport
import Glibc
import Synchronization
import XCTest

@testable import BerthHTTP

/// Holds `/hold` requests until opened.
final class Latch: Sendable {
    private let state = Mutex(false)
    var isOpen: Bool { state.withLock { $0 } }
    func open() { state.withLock { $0 = true } }
}

/// The idle and request-head timeouts and the connection cap, against real sockets.
final class ConnectionLimitsTests: XCTestCase {
    private func connect(_ port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { throw TestFailure("connect: \(errno)") }
        return fd
    }

    private func send(_ fd: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Reads what arrives within `within`, or until the text ends with `until`; `closed` when
    /// the server ended the connection.
    private func receive(_ fd: Int32, within: Duration, until: String? = nil) -> (text: String, closed: Bool) {
        var received: [UInt8] = []
        let deadline = ContinuousClock.now + within
        while ContinuousClock.now < deadline {
            if let until, String(decoding: received, as: UTF8.self).hasSuffix(until) { break }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 20) > 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { return (String(decoding: received, as: UTF8.self), true) }
            received += buffer[..<n]
        }
        return (String(decoding: received, as: UTF8.self), false)
    }

    private func serve(_ configure: (inout HTTPServer.Configuration) -> Void, release: Latch = Latch()) throws -> (HTTPServer, Int) {
        var router = Router()
        router.get("/ping") { _ in .text("pong") }
        router.get("/slow") { _ in
            try await Task.sleep(for: .milliseconds(600))
            return .text("slow")
        }
        router.get("/hold") { _ in
            while !release.isOpen { try await Task.sleep(for: .milliseconds(10)) }
            return .text("held")
        }
        var configuration = HTTPServer.Configuration()
        configure(&configuration)
        let server = HTTPServer(router: router, configuration: configuration)
        let bound = try blocking { try await server.listen(.tcp(host: "127.0.0.1", port: 0)) }
        guard case .tcp(_, let port) = bound else { throw TestFailure("not tcp") }
        return (server, port)
    }

    func testWithoutLimitsNothingIsTimedOrCapped() throws {
        let defaults = HTTPServer.Configuration()
        XCTAssertNil(defaults.idleTimeout, "berthd's attach, logs and events streams stay open at the client's will")
        XCTAssertNil(defaults.requestHeadTimeout)
        XCTAssertNil(defaults.maximumConnections)
        let (server, port) = try serve { _ in }
        let silent = try connect(port)
        defer { close(silent) }
        XCTAssertFalse(receive(silent, within: .milliseconds(400)).closed)
        try blocking { await server.shutdown() }
    }

    func testIdleAndSlowHeadConnectionsAreClosedButNotWhileARequestIsAnswered() throws {
        let (server, port) = try serve {
            $0.idleTimeout = .milliseconds(300)
            $0.requestHeadTimeout = .milliseconds(300)
        }
        let silent = try connect(port)
        let partial = try connect(port)
        let busy = try connect(port)
        defer { [silent, partial, busy].forEach { close($0) } }
        send(partial, "GET /ping HTTP/1.1\r\nHost: x\r\n")
        send(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertTrue(receive(silent, within: .seconds(3)).closed)
        XCTAssertTrue(receive(partial, within: .seconds(3)).closed)
        // Answered although it took longer than both timeouts, then closed once idle.
        let answer = receive(busy, within: .seconds(3))
        XCTAssertTrue(answer.text.hasPrefix("HTTP/1.1 200 OK"), answer.text)
        XCTAssertTrue(answer.text.hasSuffix("slow"), answer.text)
        XCTAssertTrue(answer.closed, "closed after its idle timeout")
        try blocking { await server.shutdown() }
    }

    func testCapClosesTheConnectionIdleLongestOrRefusesWhenAllAreBusy() throws {
        let release = Latch()
        let (server, port) = try serve({ $0.maximumConnections = 2 }, release: release)
        let first = try connect(port)
        let second = try connect(port)
        defer { [first, second].forEach { close($0) } }
        send(second, "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertTrue(receive(second, within: .seconds(2), until: "pong").text.hasSuffix("pong"))
        let third = try connect(port)
        defer { close(third) }
        XCTAssertTrue(receive(first, within: .seconds(2)).closed, "idle longest: made room")
        XCTAssertFalse(receive(second, within: .milliseconds(200)).closed)

        send(second, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
        send(third, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
        while server.connectionCount < 2 { usleep(10_000) }
        usleep(200_000)  // both requests under way
        let fourth = try connect(port)
        defer { close(fourth) }
        XCTAssertTrue(receive(fourth, within: .seconds(2)).closed, "every connection busy: the new one is refused")
        release.open()
        XCTAssertTrue(receive(second, within: .seconds(2), until: "held").text.hasSuffix("held"))
        XCTAssertTrue(receive(third, within: .seconds(2), until: "held").text.hasSuffix("held"))
        try blocking { await server.shutdown() }
    }
}
