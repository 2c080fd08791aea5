#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the API listens, written as dockerd's `--host` values.
public enum ListenAddress: Sendable, Hashable, CustomStringConvertible {
    case unix(path: String)
    case tcp(host: String, port: Int)

    /// dockerd's default socket is /var/run/docker.sock; Berth keeps its own beside its exec root.
    public static let defaultUnixPath = "/run/berth/berth.sock"
    /// dockerd's port for plain-text TCP.
    public static let defaultTCPPort = 2375

    /// `unix:///path`, `unix://` (the default socket), `tcp://host:port`, `tcp://:port`,
    /// `tcp://host` (port 2375), `tcp://[::1]:port`. `fd://` (systemd activation) is not served.
    public static func parse(_ text: String) throws(ListenAddressError) -> ListenAddress {
        if text.hasPrefix("unix://") {
            let path = String(text.dropFirst("unix://".count))
            if path.isEmpty { return .unix(path: defaultUnixPath) }
            guard path.hasPrefix("/") else { throw ListenAddressError("invalid unix socket path \(path): must be absolute") }
            return .unix(path: path)
        }
        if text.hasPrefix("tcp://") {
            var rest = Substring(text.dropFirst("tcp://".count))
            if let slash = rest.firstIndex(of: "/") {
                guard rest[slash...] == "/" else { throw ListenAddressError("invalid TCP address \(text): no path allowed") }
                rest = rest[..<slash]
            }
            var host: Substring
            var portText: Substring?
            if rest.hasPrefix("[") {
                guard let close = rest.firstIndex(of: "]") else { throw ListenAddressError("invalid IPv6 address in \(text)") }
                host = rest[rest.index(after: rest.startIndex)..<close]
                let after = rest[rest.index(after: close)...]
                if after.hasPrefix(":") { portText = after.dropFirst() } else if !after.isEmpty {
                    throw ListenAddressError("invalid TCP address \(text)")
                }
            } else if let colon = rest.lastIndex(of: ":") {
                host = rest[..<colon]
                portText = rest[rest.index(after: colon)...]
            } else {
                host = rest
            }
            if host.isEmpty { host = "0.0.0.0" }
            var port = defaultTCPPort
            if let portText {
                guard let p = Int(portText), (0...65535).contains(p) else { throw ListenAddressError("invalid port in \(text)") }
                port = p
            }
            return .tcp(host: String(host), port: port)
        }
        if text.hasPrefix("fd://") {
            throw ListenAddressError("\(text): socket activation (fd://) is not supported; use unix:// or tcp://")
        }
        throw ListenAddressError("invalid listen address \(text): want unix:///path or tcp://host:port")
    }

    public var description: String {
        switch self {
        case .unix(let path): "unix://\(path)"
        case .tcp(let host, let port): host.contains(":") ? "tcp://[\(host)]:\(port)" : "tcp://\(host):\(port)"
        }
    }
}

public struct ListenAddressError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Who may use a unix socket: its mode and group, as dockerd's `-G docker`.
public struct UnixSocketAccess: Sendable {
    public var mode: mode_t
    /// A group name or number; nil leaves the socket's group as root's.
    public var group: String?
    /// Fail when `group` does not exist (an explicit `--group`); otherwise just skip it.
    public var groupRequired: Bool

    public init(mode: mode_t = 0o660, group: String? = "berth", groupRequired: Bool = false) {
        self.mode = mode
        self.group = group
        self.groupRequired = groupRequired
    }
}

/// The file-system side of a unix socket listener: parent directory, stale socket, ownership.
enum UnixSocketFile {
    /// Creates the parent directory and removes a socket left by a daemon that is gone; refuses
    /// when the path is not a socket or when something still answers on it.
    static func prepare(_ path: String) throws(ListenAddressError) {
        guard path.utf8.count < 108 else { throw ListenAddressError("socket path \(path) is longer than 107 bytes") }
        let parent = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        if !parent.isEmpty { try makeDirectories(parent) }
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else {
            throw ListenAddressError("\(path) exists and is not a socket")
        }
        if answers(path) {
            throw ListenAddressError("another daemon is listening on \(path)")
        }
        guard unlink(path) == 0 || errno == ENOENT else {
            throw ListenAddressError("cannot remove stale socket \(path): \(errnoText())")
        }
    }

    /// True if a connect() to the socket succeeds: a live daemon, not a leftover file.
    static func answers(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            let bytes = Array(path.utf8.prefix(raw.count - 1))
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let result = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        return result == 0
    }

    /// Gives the bound socket its group and mode.
    static func applyAccess(_ path: String, _ access: UnixSocketAccess) throws(ListenAddressError) {
        if let group = access.group {
            if let gid = lookupGroup(group) {
                guard chown(path, uid_t.max, gid) == 0 else { throw ListenAddressError("chown \(path) to group \(group): \(errnoText())") }
            } else if access.groupRequired {
                throw ListenAddressError("group \(group) not found: cannot give it access to \(path)")
            }
        }
        guard chmod(path, access.mode) == 0 else { throw ListenAddressError("chmod \(path): \(errnoText())") }
    }

    static func lookupGroup(_ name: String) -> gid_t? {
        if let number = gid_t(name) { return number }
        var group = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 4096)
        let rc = getgrnam_r(name, &group, &buffer, buffer.count, &result)
        guard rc == 0, result != nil else { return nil }
        return group.gr_gid
    }

    static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(ListenAddressError) {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, mode) != 0 && errno != EEXIST {
                throw ListenAddressError("cannot create \(current): \(errnoText())")
            }
        }
    }
}

func errnoText() -> String { String(cString: strerror(errno)) }
