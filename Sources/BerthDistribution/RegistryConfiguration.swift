import BerthImages
import FoundationEssentials

/// Where the daemon may reach registries: dockerd's `insecure-registries` and
/// `registry-mirrors` (daemon.json keys and flags of the same names).
public struct RegistryConfiguration: Sendable, Equatable {
    /// `host[:port]` names, or IPv4 CIDR blocks (`10.0.0.0/8`), served over plain HTTP too.
    public var insecureRegistries: [String]
    /// Base URLs tried before Docker Hub for `docker.io` images (`http://127.0.0.1:5000`).
    public var mirrors: [String]
    /// Per-registry CA certificates, as dockerd's /etc/docker/certs.d: every `*.crt` in
    /// `<certsDirectory>/<host[:port]>/` is trusted for that registry, besides the system CAs.
    public var certsDirectory: String

    public static let defaultCertsDirectory = "/etc/berth/certs.d"

    public init(insecureRegistries: [String] = [], mirrors: [String] = [], certsDirectory: String = defaultCertsDirectory) {
        self.insecureRegistries = insecureRegistries
        self.mirrors = mirrors.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.certsDirectory = certsDirectory
    }

    /// The CA files for `host` (`registry.example:5000`), sorted; empty when it has none.
    public func caFiles(for host: String) -> [String] {
        let dir = certsDirectory + "/" + host
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return [] }
        return entries.filter { $0.hasSuffix(".crt") }.sorted().map { dir + "/" + $0 }
    }

    /// The host that serves Docker Hub's registry API.
    public static let dockerHubHost = "registry-1.docker.io"

    /// The endpoints to try for `domain`, in order. Docker Hub: the mirrors, then the origin.
    /// Loopback and insecure registries: HTTPS, then plain HTTP (as dockerd falls back).
    public func endpoints(for domain: String) -> [RegistryEndpoint] {
        if domain == Reference.defaultDomain {
            let mirrorEndpoints = mirrors.compactMap { RegistryEndpoint(url: $0, isMirror: true) }
            return mirrorEndpoints + [RegistryEndpoint(scheme: "https", host: Self.dockerHubHost, isMirror: false)]
        }
        let secure = RegistryEndpoint(scheme: "https", host: domain, isMirror: false)
        return allowsPlainHTTP(domain) ? [secure, RegistryEndpoint(scheme: "http", host: domain, isMirror: false)] : [secure]
    }

    /// Loopback registries and the configured insecure ones may be reached over plain HTTP.
    public func allowsPlainHTTP(_ domain: String) -> Bool {
        let host = Self.hostPart(domain)
        if host == "localhost" || host == "::1" || host == "[::1]" { return true }
        if let ip = Self.ipv4(host), ip >> 24 == 127 { return true }
        for entry in insecureRegistries {
            if entry == domain || entry == host { return true }
            if let slash = entry.firstIndex(of: "/"), let base = Self.ipv4(String(entry[..<slash])),
               let bits = UInt32(entry[entry.index(after: slash)...]), bits <= 32, let ip = Self.ipv4(host) {
                let mask: UInt32 = bits == 0 ? 0 : ~UInt32(0) << (32 - bits)
                if ip & mask == base & mask { return true }
            }
        }
        return false
    }

    /// `host:5000` → `host`, `[::1]:5000` → `::1`.
    static func hostPart(_ domain: String) -> String {
        if domain.hasPrefix("["), let close = domain.firstIndex(of: "]") {
            return String(domain[domain.index(after: domain.startIndex)..<close])
        }
        if let colon = domain.lastIndex(of: ":") { return String(domain[..<colon]) }
        return domain
    }

    static func ipv4(_ s: String) -> UInt32? {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: UInt32 = 0
        for p in parts {
            guard let v = UInt8(p) else { return nil }
            out = out << 8 | UInt32(v)
        }
        return out
    }
}

/// One base URL that serves the registry API (`/v2/...`).
public struct RegistryEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var scheme: String
    /// Host with its port, as in a URL: `localhost:5000`, `[::1]:5000`.
    public var host: String
    /// Path prefix below the host (a mirror may live under one); empty or `/prefix`.
    public var pathPrefix: String
    public var isMirror: Bool

    public init(scheme: String, host: String, pathPrefix: String = "", isMirror: Bool) {
        self.scheme = scheme; self.host = host; self.pathPrefix = pathPrefix; self.isMirror = isMirror
    }

    /// Parses `http://host:port[/prefix]`; a bare host means HTTPS.
    public init?(url: String, isMirror: Bool) {
        var rest = Substring(url)
        var scheme = "https"
        if let r = rest.firstRange(of: "://") {
            scheme = rest[..<r.lowerBound].lowercased()
            rest = rest[r.upperBound...]
        }
        guard scheme == "http" || scheme == "https" else { return nil }
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let host = String(rest[..<slash])
        guard !host.isEmpty else { return nil }
        var prefix = String(rest[slash...])
        while prefix.hasSuffix("/") { prefix.removeLast() }
        self.init(scheme: scheme, host: host, pathPrefix: prefix, isMirror: isMirror)
    }

    public var base: String { scheme + "://" + host + pathPrefix }
    public var description: String { base }
}
