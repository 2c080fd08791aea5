import BerthTestSupport
import Glibc
import Synchronization
import XCTest

@testable import BerthAPI

/// An APIServer on a unix socket in a temporary directory.
final class TestServer {
    let directory: TemporaryDirectory
    let path: String
    let server: APIServer

    init(configure: (inout Router) -> Void) throws {
        directory = try TemporaryDirectory()
        path = directory.path + "/api.sock"
        var router = Router()
        configure(&router)
        var configuration = APIServer.Configuration()
        configuration.shutdownGracePeriod = .milliseconds(500)
        let server = APIServer(router: router, configuration: configuration)
        self.server = server
        let path = self.path
        _ = try blocking { try await server.listen(.unix(path: path), access: UnixSocketAccess(group: nil)) }
    }

    func connect() throws -> RawClient { try RawClient(path: path) }

    func stop() throws {
        let server = self.server
        try blocking { await server.shutdown() }
    }
}

/// An HTTP response as read off the wire.
struct RawResponse {
    var statusLine: String
    var headers: [(String, String)]
    var body: [UInt8]

    var status: Int { Int(statusLine.split(separator: " ")[1]) ?? 0 }
    var text: String { String(decoding: body, as: UTF8.self) }

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
}

/// A blocking client on a unix socket that speaks HTTP/1.1 by hand, so tests see exactly
/// what goes over the wire (framing, headers, what follows a hijack).
final class RawClient {
    let fd: Int32
    private var pending: [UInt8] = []

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            let bytes = Array(path.utf8)
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            throw TestFailure("connect \(path): errno \(errno)")
        }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw TestFailure("send failed: errno \(errno)") }
            offset += n
        }
    }

    /// Sends what the socket takes without blocking; returns how many bytes went.
    func sendAvailable(_ bytes: [UInt8], from offset: Int = 0) -> Int {
        var sent = offset
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if n <= 0 { break }
            sent += n
        }
        return sent - offset
    }

    /// Half-closes: the server reads EOF, the client can still read.
    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// More bytes from the socket; empty at EOF.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 { throw TestFailure("recv failed: errno \(errno) (timeout?)") }
        if n == 0 { return false }
        pending.append(contentsOf: chunk[0..<n])
        return true
    }

    func readLine() throws -> String {
        while true {
            if let i = pending.firstIndex(of: UInt8(ascii: "\n")) {
                var line = Array(pending[...i])
                pending.removeFirst(i + 1)
                line.removeLast()
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                return String(decoding: line, as: UTF8.self)
            }
            guard try fill() else { throw TestFailure("EOF while reading a line") }
        }
    }

    func read(exactly count: Int) throws -> [UInt8] {
        while pending.count < count {
            guard try fill() else { throw TestFailure("EOF after \(pending.count) of \(count) bytes") }
        }
        let out = Array(pending.prefix(count))
        pending.removeFirst(count)
        return out
    }

    func readUntilClose() throws -> [UInt8] {
        while try fill() {}
        defer { pending = [] }
        return pending
    }

    /// Reads the status line and headers, then the body as the headers frame it; a 101 or a
    /// hijack's unframed 200 return with an empty body, leaving the stream to the caller.
    func readResponse(head: Bool = false, hijacked: Bool = false) throws -> RawResponse {
        let statusLine = try readLine()
        var headers: [(String, String)] = []
        while true {
            let line = try readLine()
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else { throw TestFailure("bad header line \(line)") }
            headers.append((String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingSpaces()))
        }
        var response = RawResponse(statusLine: statusLine, headers: headers, body: [])
        if head || hijacked || response.status == 101 || response.status == 204 || response.status == 304 { return response }
        if response.header("Transfer-Encoding")?.lowercased() == "chunked" {
            while true {
                let sizeLine = try readLine()
                guard let size = Int(sizeLine.split(separator: ";")[0], radix: 16) else { throw TestFailure("bad chunk size \(sizeLine)") }
                if size == 0 {
                    _ = try readLine()
                    break
                }
                response.body += try read(exactly: size)
                _ = try readLine()
            }
        } else if let length = response.header("Content-Length").flatMap(Int.init) {
            response.body = try read(exactly: length)
        } else {
            response.body = try readUntilClose()
        }
        return response
    }

    /// True once the server has closed the connection (reads EOF with nothing pending).
    func isClosedByServer() throws -> Bool {
        pending.isEmpty ? try !fill() : false
    }
}

/// A one-shot latch that route handlers wait on and tests open.
final class Latch: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func wait() async {
        await withCheckedContinuation { continuation in
            let resume = state.withLock { s -> Bool in
                if s.open { return true }
                s.waiters.append(continuation)
                return false
            }
            if resume { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { s in
            s.open = true
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w.resume() }
    }
}

final class Counter: Sendable {
    private let state = Mutex(0)
    func add(_ n: Int) { state.withLock { $0 += n } }
    var value: Int { state.withLock { $0 } }
}

extension String {
    func trimmingSpaces() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
        return String(drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}
