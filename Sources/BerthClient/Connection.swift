import BerthOS
import Glibc

/// Where the daemon listens: `unix:///path` or `tcp://host:port`.
public enum DaemonAddress: Equatable, Sendable {
    case unix(String)
    case tcp(host: String, port: UInt16)

    /// Parses `-H` / `DOCKER_HOST` values as docker does: a bare path is a unix socket,
    /// `tcp://host` defaults to port 2375.
    public init?(_ text: String) {
        if text.hasPrefix("unix://") {
            self = .unix(String(text.dropFirst(7)))
        } else if text.hasPrefix("/") {
            self = .unix(text)
        } else if text.hasPrefix("tcp://") || text.hasPrefix("http://") {
            var rest = Substring(text.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: true).dropFirst().first ?? "")
            if rest.hasPrefix("[") {  // [::1]:2375
                guard let close = rest.firstIndex(of: "]") else { return nil }
                let host = String(rest[rest.index(after: rest.startIndex)..<close])
                rest = rest[rest.index(after: close)...]
                let port = rest.hasPrefix(":") ? UInt16(rest.dropFirst()) : 2375
                guard let port else { return nil }
                self = .tcp(host: host, port: port)
                return
            }
            let parts = rest.split(separator: ":", maxSplits: 1)
            guard let host = parts.first else { return nil }
            let port = parts.count > 1 ? UInt16(parts[1]) : 2375
            guard let port else { return nil }
            self = .tcp(host: String(host), port: port)
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .unix(let path): "unix://\(path)"
        case .tcp(let host, let port): "tcp://\(host):\(port)"
        }
    }
}

/// Failures talking to the daemon, and error answers from it.
public struct ClientError: Error, CustomStringConvertible {
    public enum Kind: Sendable { case connection, protocolError, daemon }
    public let kind: Kind
    /// The HTTP status for `.daemon` errors.
    public let status: Int
    public let message: String

    public init(_ kind: Kind, _ message: String, status: Int = 0) {
        self.kind = kind
        self.message = message
        self.status = status
    }

    /// How docker prints it: daemon answers are prefixed, the rest are said as they are.
    public var description: String {
        kind == .daemon ? "Error response from daemon: \(message)" : message
    }
}

/// One blocking HTTP/1.1 connection over a socket. A CLI makes a handful of requests, so
/// blocking I/O on the main thread is simplest and starts fastest.
public final class Connection {
    public let fd: Int32
    /// Bytes read from the socket and not yet consumed.
    var buffer: [UInt8] = []
    var bufferStart = 0

    init(fd: Int32) { self.fd = fd }

    deinit { close(fd) }

    public static func open(_ address: DaemonAddress) throws(ClientError) -> Connection {
        switch address {
        case .unix(let path):
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw ClientError(.connection, SystemError("socket").message) }
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
                close(fd)
                throw ClientError(.connection, "socket path too long: \(path)")
            }
            withUnsafeMutableBytes(of: &addr.sun_path) { raw in
                for (i, b) in bytes.enumerated() { raw[i] = b }
            }
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            guard rc == 0 else {
                close(fd)
                throw ClientError(.connection, "Cannot connect to the Docker daemon at \(address.description). Is the docker daemon running?")
            }
            return Connection(fd: fd)
        case .tcp(let host, let port):
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var list: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
                throw ClientError(.connection, "Cannot connect to the Docker daemon at \(address.description): cannot resolve \(host)")
            }
            defer { freeaddrinfo(list) }
            var entry: UnsafeMutablePointer<addrinfo>? = first
            while let ai = entry {
                let fd = socket(ai.pointee.ai_family, ai.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), ai.pointee.ai_protocol)
                if fd >= 0 {
                    if connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 {
                        var one: Int32 = 1
                        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                        return Connection(fd: fd)
                    }
                    close(fd)
                }
                entry = ai.pointee.ai_next
            }
            throw ClientError(.connection, "Cannot connect to the Docker daemon at \(address.description). Is the docker daemon running?")
        }
    }

    // MARK: Writing

    public func write(_ bytes: [UInt8]) throws(ClientError) {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ClientError(.connection, SystemError("write to the daemon").message)
            }
            off += n
        }
    }

    /// Half-closes the connection: the daemon sees end of input, the output keeps flowing.
    public func closeWrite() { shutdown(fd, Int32(SHUT_WR)) }

    // MARK: Reading

    /// Reads more from the socket into the buffer; false at end of stream.
    func fill() throws(ClientError) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ClientError(.connection, SystemError("read from the daemon").message)
            }
            if n == 0 { return false }
            if bufferStart > 0 {
                buffer.removeFirst(bufferStart)
                bufferStart = 0
            }
            buffer += chunk[0..<n]
            return true
        }
    }

    var buffered: Int { buffer.count - bufferStart }

    /// Takes up to `max` buffered bytes (reading when the buffer is empty); nil at end of stream.
    public func readSome(max: Int = Int.max) throws(ClientError) -> [UInt8]? {
        if buffered == 0, try !fill() { return nil }
        let n = min(max, buffered)
        let out = Array(buffer[bufferStart..<(bufferStart + n)])
        bufferStart += n
        return out
    }

    func readExactly(_ count: Int) throws(ClientError) -> [UInt8] {
        while buffered < count {
            guard try fill() else { throw ClientError(.protocolError, "unexpected end of response from the daemon") }
        }
        let out = Array(buffer[bufferStart..<(bufferStart + count)])
        bufferStart += count
        return out
    }

    func readLine() throws(ClientError) -> String {
        while true {
            if let nl = buffer[bufferStart...].firstIndex(of: 0x0A) {
                var end = nl
                if end > bufferStart, buffer[end - 1] == 0x0D { end -= 1 }
                let line = String(decoding: buffer[bufferStart..<end], as: UTF8.self)
                bufferStart = nl + 1
                return line
            }
            guard try fill() else { throw ClientError(.protocolError, "unexpected end of response from the daemon") }
        }
    }

    /// Takes whatever is left in the buffer without reading (the start of a hijacked stream).
    public func takeBuffered() -> [UInt8] {
        let out = Array(buffer[bufferStart...])
        buffer = []
        bufferStart = 0
        return out
    }
}
