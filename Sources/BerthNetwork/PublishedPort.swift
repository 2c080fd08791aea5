import Glibc

/// A container port published on the host, as inspect's `NetworkSettings.Ports` and
/// `docker port` show it once the host port is settled.
public struct PublishedPort: Codable, Sendable, Hashable {
    public enum Proto: String, Codable, Sendable { case tcp, udp }
    public var proto: Proto
    public var containerPort: UInt16
    /// `0.0.0.0` for every address of the host.
    public var hostIP: String
    public var hostPort: UInt16

    public init(proto: Proto, containerPort: UInt16, hostIP: String, hostPort: UInt16) {
        self.proto = proto; self.containerPort = containerPort; self.hostIP = hostIP; self.hostPort = hostPort
    }

    /// Docker's key: `80/tcp`.
    public var key: String { "\(containerPort)/\(proto.rawValue)" }
}

/// What `-p` / `PortBindings` (and `-P`) ask for, before host ports are taken.
public struct PortRequest: Sendable, Hashable {
    public var proto: PublishedPort.Proto
    public var containerPort: UInt16
    public var hostIP: IPv4Address?
    /// Both 0: any free port (ephemeral); equal: exactly that one; else the first free one.
    public var hostPorts: ClosedRange<UInt16>

    public init(proto: PublishedPort.Proto, containerPort: UInt16, hostIP: IPv4Address?, hostPorts: ClosedRange<UInt16>) {
        self.proto = proto; self.containerPort = containerPort; self.hostIP = hostIP; self.hostPorts = hostPorts
    }

    /// Parses a port key (`80`, `80/tcp`, `53/udp`).
    public static func parseKey(_ key: String) throws(NetworkError) -> (port: UInt16, proto: PublishedPort.Proto) {
        let parts = key.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let port = UInt16(parts[0]), port != 0 else {
            throw NetworkError(.invalidArgument, "invalid port specification: \"\(key)\"")
        }
        let protoText = parts.count > 1 ? parts[1].lowercased() : "tcp"
        guard let proto = PublishedPort.Proto(rawValue: protoText) else {
            throw NetworkError(.invalidArgument, "invalid proto: \(protoText) (only tcp and udp are supported)")
        }
        return (port, proto)
    }

    /// Docker's `PortBindings` plus, with `publishAll`, every exposed port on an ephemeral one.
    /// `defaultHostIP` is the network's `host_binding_ipv4`.
    public static func requests(bindings: [String: [(hostIP: String?, hostPort: String?)]], exposed: [String],
                                publishAll: Bool, defaultHostIP: IPv4Address? = nil) throws(NetworkError) -> [PortRequest] {
        var out: [PortRequest] = []
        for key in bindings.keys.sorted() {
            let (port, proto) = try parseKey(key)
            let list = bindings[key] ?? []
            for b in list.isEmpty ? [(hostIP: nil, hostPort: nil)] : list {
                var ip: IPv4Address? = defaultHostIP
                if let text = b.hostIP, !text.isEmpty {
                    guard let parsed = IPv4Address(text) else {
                        if text.contains(":") { continue }  // IPv6 bindings: not served yet (IPv4 only)
                        throw NetworkError(.invalidArgument, "invalid host IP \"\(text)\" in port binding for \(key)")
                    }
                    ip = parsed.isUnspecified ? nil : parsed
                }
                out.append(PortRequest(proto: proto, containerPort: port, hostIP: ip, hostPorts: try hostPorts(b.hostPort, key: key)))
            }
        }
        if publishAll {
            for key in exposed.sorted() {
                let (port, proto) = try parseKey(key)
                if out.contains(where: { $0.containerPort == port && $0.proto == proto }) { continue }
                out.append(PortRequest(proto: proto, containerPort: port, hostIP: defaultHostIP, hostPorts: 0...0))
            }
        }
        return out
    }

    static func hostPorts(_ text: String?, key: String) throws(NetworkError) -> ClosedRange<UInt16> {
        guard let text, !text.isEmpty else { return 0...0 }
        let parts = text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard let low = UInt16(parts[0]), let high = parts.count > 1 ? UInt16(parts[1]) : low, low <= high else {
            throw NetworkError(.invalidArgument, "invalid host port \"\(text)\" for \(key): a port (1-65535) or a range low-high")
        }
        if low == 0 && high != 0 {
            throw NetworkError(.invalidArgument, "invalid host port range \"\(text)\" for \(key)")
        }
        return low...high
    }
}

/// Holds a published host port for as long as the container runs: a socket bound to it, so
/// the kernel refuses it to anyone else (and picks a free one for an ephemeral request), the
/// way docker-proxy's listener does, without relaying any traffic (the firewall's DNAT does).
public final class PortReservation: Sendable {
    public let port: PublishedPort
    private let fd: Int32

    private init(port: PublishedPort, fd: Int32) {
        self.port = port
        self.fd = fd
    }

    deinit { close(fd) }

    /// Binds the first free port the request allows.
    public static func reserve(_ request: PortRequest) throws(NetworkError) -> PortReservation {
        let ipText = request.hostIP?.description ?? "0.0.0.0"
        var lastErrno: Int32 = 0
        for port in request.hostPorts {
            let fd = socket(AF_INET, Int32(request.proto == .tcp ? SOCK_STREAM.rawValue : SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw NetworkError(.system, "socket: \(String(cString: strerror(errno)))") }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = port.bigEndian
            addr.sin_addr.s_addr = (request.hostIP?.value ?? 0).bigEndian
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if rc == 0 {
                var bound = sockaddr_in()
                var len = socklen_t(MemoryLayout<sockaddr_in>.size)
                _ = withUnsafeMutablePointer(to: &bound) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
                }
                let published = PublishedPort(proto: request.proto, containerPort: request.containerPort,
                                              hostIP: ipText, hostPort: UInt16(bigEndian: bound.sin_port))
                return PortReservation(port: published, fd: fd)
            }
            lastErrno = errno
            close(fd)
        }
        let what = request.hostPorts == 0...0 ? "an ephemeral port" : request.hostPorts.count == 1
            ? "\(ipText):\(request.hostPorts.lowerBound)" : "\(ipText):\(request.hostPorts.lowerBound)-\(request.hostPorts.upperBound)"
        if lastErrno == EADDRINUSE {
            throw NetworkError(.conflict, "Bind for \(what) failed: port is already allocated")
        }
        if lastErrno == EADDRNOTAVAIL {
            throw NetworkError(.invalidArgument, "cannot publish on \(what): \(ipText) is not an address of this host")
        }
        throw NetworkError(.system, "Bind for \(what)/\(request.proto.rawValue) failed: \(String(cString: strerror(lastErrno)))")
    }
}

/// A published port and the container address it forwards to.
public struct Forward: Sendable, Hashable {
    public var port: PublishedPort
    public var container: IPv4Address
    public init(port: PublishedPort, container: IPv4Address) {
        self.port = port
        self.container = container
    }
}
