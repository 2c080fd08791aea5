import BerthOCI

/// A Docker image reference (the grammar of distribution/reference), normalised the way the
/// docker CLI does: `busybox` is `docker.io/library/busybox`, `user/app` is `docker.io/user/app`,
/// a first component with a `.` or `:` (or `localhost`) is a registry host.
public struct Reference: Sendable, Hashable, CustomStringConvertible, Codable {
    /// Registry host with an optional port: `docker.io`, `host:5000`, `[::1]:5000`.
    public let domain: String
    /// Repository path below the domain: `library/busybox`, `a/b`.
    public let path: String
    public let tag: String?
    public let digest: Digest?

    public static let defaultDomain = "docker.io"
    public static let defaultTag = "latest"

    /// Parses and normalises; no tag is added (see `withDefaultTag`).
    public init(parsing input: String) throws {
        func fail(_ why: String) -> ImageError { ImageError.invalid("invalid reference format: \(why): \"\(input)\"") }
        guard !input.isEmpty else { throw ImageError.invalid("invalid reference format: empty reference") }
        if Self.isFullHexID(input) {
            throw ImageError.invalid("invalid repository name (\(input)), cannot specify 64-byte hexadecimal strings")
        }
        var rest = Substring(input)
        var digest: Digest?
        if let at = rest.firstIndex(of: "@") {
            do { digest = try Digest(String(rest[rest.index(after: at)...])) } catch {
                throw fail(error.reason)
            }
            rest = rest[..<at]
        }
        var tag: String?
        let lastSlash = rest.lastIndex(of: "/")
        if let colon = rest.lastIndex(of: ":"), lastSlash.map({ colon > $0 }) ?? true {
            let t = String(rest[rest.index(after: colon)...])
            guard Self.isValidTag(t) else { throw fail("tag \"\(t)\" must be 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'") }
            tag = t
            rest = rest[..<colon]
        }
        var domain = Self.defaultDomain
        var path = String(rest)
        if let slash = rest.firstIndex(of: "/") {
            let first = rest[..<slash]
            if first.contains(".") || first.contains(":") || first == "localhost" || first.lowercased() != first {
                domain = String(first)
                path = String(rest[rest.index(after: slash)...])
            }
        }
        if domain == "index.docker.io" { domain = Self.defaultDomain }
        if domain == Self.defaultDomain && !path.contains("/") { path = "library/" + path }
        guard Self.isValidDomain(domain) else { throw fail("invalid registry host \"\(domain)\"") }
        guard path.lowercased() == path else { throw fail("repository name (\(path)) must be lowercase") }
        guard !path.isEmpty, path.split(separator: "/", omittingEmptySubsequences: false).allSatisfy(Self.isValidComponent) else {
            throw fail("repository path components must be lowercase letters and digits separated by '.', '_', '__' or '-'")
        }
        guard domain.utf8.count + 1 + path.utf8.count <= 255 else {
            throw fail("repository name must not be more than 255 characters")
        }
        self.domain = domain
        self.path = path
        self.tag = tag
        self.digest = digest
    }

    public init(domain: String = Reference.defaultDomain, path: String, tag: String? = nil, digest: Digest? = nil) {
        self.domain = domain; self.path = path; self.tag = tag; self.digest = digest
    }

    /// `docker.io/library/busybox`
    public var name: String { domain + "/" + path }

    /// The fully qualified form: `docker.io/library/busybox:latest`.
    public var description: String {
        name + (tag.map { ":" + $0 } ?? "") + (digest.map { "@" + $0.string } ?? "")
    }

    /// The name as `docker images` shows it: `busybox`, `user/app`, `host:5000/a/b`.
    public var familiarName: String {
        guard domain == Self.defaultDomain else { return name }
        if path.hasPrefix("library/") && path.split(separator: "/").count == 2 { return String(path.dropFirst(8)) }
        return path
    }

    /// `busybox:latest`, `host:5000/a/b@sha256:…`
    public var familiarString: String {
        familiarName + (tag.map { ":" + $0 } ?? "") + (digest.map { "@" + $0.string } ?? "")
    }

    /// Adds `latest` to a reference with neither a tag nor a digest.
    public func withDefaultTag() -> Reference {
        tag == nil && digest == nil ? Reference(domain: domain, path: path, tag: Self.defaultTag) : self
    }

    /// The same name with only `tag`.
    public func tagged(_ tag: String) -> Reference { Reference(domain: domain, path: path, tag: tag) }

    /// The same name with only `digest`.
    public func digested(_ digest: Digest) -> Reference { Reference(domain: domain, path: path, digest: digest) }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        self = try Reference(parsing: try c.decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    // MARK: Grammar

    static func isFullHexID(_ s: String) -> Bool { s.utf8.count == 64 && isLowerHex(s) }

    static func isLowerHex(_ s: some StringProtocol) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    private static func isAlnumLower(_ c: UInt8) -> Bool { (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a) }
    private static func isAlnum(_ c: UInt8) -> Bool { isAlnumLower(c) || (c >= 0x41 && c <= 0x5a) }

    /// `[\w][\w.-]{0,127}`
    static func isValidTag(_ t: String) -> Bool {
        let u = Array(t.utf8)
        guard !u.isEmpty, u.count <= 128, isAlnum(u[0]) || u[0] == 0x5f else { return false }
        return u.allSatisfy { isAlnum($0) || $0 == 0x5f || $0 == 0x2e || $0 == 0x2d }
    }

    /// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
    static func isValidComponent(_ c: Substring) -> Bool {
        let u = Array(c.utf8)
        guard let first = u.first, let last = u.last, isAlnumLower(first), isAlnumLower(last) else { return false }
        var i = 0
        while i < u.count {
            if isAlnumLower(u[i]) { i += 1; continue }
            var j = i
            while j < u.count && !isAlnumLower(u[j]) { j += 1 }
            let sep = u[i..<j]
            let ok = sep.elementsEqual([0x2e]) || sep.elementsEqual([0x5f]) || sep.elementsEqual([0x5f, 0x5f])
                || sep.allSatisfy { $0 == 0x2d }
            if !ok { return false }
            i = j
        }
        return true
    }

    /// A DNS-ish host (labels of letters, digits and inner `-`) or a bracketed IPv6 address,
    /// with an optional numeric port.
    static func isValidDomain(_ d: String) -> Bool {
        var host = Substring(d)
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return false }
            let inner = host[host.index(after: host.startIndex)..<close]
            guard !inner.isEmpty, inner.utf8.allSatisfy({ isAlnum($0) || $0 == 0x3a }) else { return false }
            host = host[host.index(after: close)...]
            if host.isEmpty { return true }
            guard host.first == ":" else { return false }
            return isPort(host.dropFirst())
        }
        if let colon = host.lastIndex(of: ":") {
            guard isPort(host[host.index(after: colon)...]) else { return false }
            host = host[..<colon]
        }
        return !host.isEmpty && host.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            let u = Array(label.utf8)
            guard let f = u.first, let l = u.last, isAlnum(f), isAlnum(l) else { return false }
            return u.allSatisfy { isAlnum($0) || $0 == 0x2d }
        }
    }

    private static func isPort(_ p: Substring) -> Bool {
        !p.isEmpty && p.utf8.count <= 5 && p.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }
}
