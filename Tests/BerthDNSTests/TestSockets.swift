// Plain blocking Glibc sockets on 127.0.0.1: the descriptors the daemon would hand over, and
// clients that talk to the server the way a resolver in a container would.

import Glibc
import NIOPosix

struct TestSocketError: Error, CustomStringConvertible {
    var description: String
    init(_ what: String) { description = "\(what): errno \(errno)" }
}

enum TestSockets {
    static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    static func withSockaddr<T>(_ address: sockaddr_in, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        var address = address
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }

    static func port(of fd: Int32) throws -> UInt16 {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let rc = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard rc == 0 else { throw TestSocketError("getsockname") }
        return UInt16(bigEndian: address.sin_port)
    }

    /// A UDP socket bound to 127.0.0.1 on a free port.
    static func boundUDP() throws -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw TestSocketError("socket") }
        guard withSockaddr(loopback(port: 0), { bind(fd, $0, $1) }) == 0 else { throw TestSocketError("bind") }
        return (fd, try port(of: fd))
    }

    /// A listening TCP socket on 127.0.0.1; `port` 0 picks a free one.
    static func listeningTCP(port wanted: UInt16 = 0) throws -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestSocketError("socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard withSockaddr(loopback(port: wanted), { bind(fd, $0, $1) }) == 0 else { throw TestSocketError("bind") }
        guard listen(fd, 16) == 0 else { throw TestSocketError("listen") }
        return (fd, try port(of: fd))
    }

    /// UDP and TCP sockets on the same free port, as the daemon binds 127.0.0.11:53 for both.
    static func serverPair() throws -> (udp: Int32, tcp: Int32, port: UInt16) {
        for _ in 0..<20 {
            let udp = try boundUDP()
            if let tcp = try? listeningTCP(port: udp.port) { return (udp.fd, tcp.fd, udp.port) }
            close(udp.fd)
        }
        throw TestSocketError("no port free for both UDP and TCP")
    }

    static func setReceiveTimeout(_ fd: Int32, seconds: Int) {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends one datagram and waits for one reply (nil on timeout). Blocking: run off the
    /// cooperative pool (see `blocking`).
    static func udpExchange(_ query: [UInt8], port: UInt16, timeoutSeconds: Int = 5) -> [UInt8]? {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        setReceiveTimeout(fd, seconds: timeoutSeconds)
        let sent = withSockaddr(loopback(port: port)) { address, length in
            query.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, address, length) }
        }
        guard sent == query.count else { return nil }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard received >= 0 else { return nil }
        return Array(buffer[0..<received])
    }

    /// Sends datagrams without waiting for anything.
    static func udpSend(_ datagrams: [[UInt8]], port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        for datagram in datagrams {
            _ = withSockaddr(loopback(port: port)) { address, length in
                datagram.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, address, length) }
            }
        }
    }

    /// Opens one TCP connection, writes all queries framed back to back, reads `queries.count`
    /// framed replies (fewer on timeout or EOF).
    static func tcpExchange(_ queries: [[UInt8]], port: UInt16, timeoutSeconds: Int = 5) -> [[UInt8]] {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        setReceiveTimeout(fd, seconds: timeoutSeconds)
        guard withSockaddr(loopback(port: port), { connect(fd, $0, $1) }) == 0 else { return [] }
        var out: [UInt8] = []
        for query in queries { out += [UInt8(query.count >> 8), UInt8(query.count & 0xFF)] + query }
        guard out.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == out.count else { return [] }
        var pending: [UInt8] = []
        var replies: [[UInt8]] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while replies.count < queries.count {
            if pending.count >= 2 {
                let length = Int(pending[0]) << 8 | Int(pending[1])
                if pending.count >= 2 + length {
                    replies.append(Array(pending[2..<2 + length]))
                    pending.removeFirst(2 + length)
                    continue
                }
            }
            let received = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard received > 0 else { break }
            pending += chunk[0..<received]
        }
        return replies
    }

    /// Runs blocking socket calls on NIO's thread pool, keeping the cooperative pool (which
    /// the server's tasks need) free.
    static func blocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(body)
    }
}
