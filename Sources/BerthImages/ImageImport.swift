import BerthOCI
import BerthOS
import FoundationEssentials
import Glibc

extension ImageStore {
    /// `docker import`: a root filesystem tarball (plain or compressed, read from `fd`) becomes a
    /// one-layer image whose config starts empty and takes `changes` (Dockerfile-like lines, see
    /// `ConfigChange`). Tagged `reference` when given (default tag `latest`).
    public func importImage(from fd: Int32, reference: String? = nil, changes: [String] = [], message: String? = nil,
                            platform: Platform = .current, created: String? = nil) throws -> Image {
        let ref = try reference.map { try Reference(parsing: $0) }
        if let ref, ref.digest != nil { throw ImageError.invalid("refusing to create a tag with a digest reference") }
        var containerConfig = ContainerConfig()
        try ConfigChange.apply(changes, to: &containerConfig)

        let lease = content.beginLease()
        defer { content.endLease(lease) }
        do {
            // Stored as the plain tar whatever the input's compression (as dockerd keeps layers),
            // so the blob's digest is its DiffID and every tool can read it back.
            let writer = try content.writer(lease: lease)
            // The plain tar is stored and then unpacked beside it: it may take half the free space.
            let available = try os { () throws(SystemError) in try DiskSpace.available(at: content.root) }
            let tooLarge = ImageError.system("Error processing tar file: the tarball expands to more than "
                + "\(DiskSpace.describe(available / 2)), half of the \(DiskSpace.describe(available)) free under \(content.root), "
                + "which storing and unpacking it would take", errno: ENOSPC)
            let reader = try TarReader(fd: fd, what: "imported tarball", tee: writer, limit: (available / 2, tooLarge))
            let diffID = try reader.finish().digest
            let layer = try writer.commit(mediaType: LayerCompression.none.ociMediaType, expected: diffID)
            try unpack(layers: [layer], diffIDs: [diffID])
            let when = created ?? Timestamp.now()
            let comment = message.flatMap { $0.isEmpty ? nil : $0 } ?? "Imported from -"
            let config = ImageConfig(
                created: when, architecture: platform.architecture, os: platform.os, variant: platform.variant,
                config: containerConfig, rootfs: .init(diffIDs: [diffID]),
                history: [.init(created: when, comment: comment)])
            let configDesc = try content.ingest(bytes: try JSON.encode(CommentedConfig(config: config, comment: comment)),
                                                mediaType: MediaType.imageConfig, lease: lease)
            let manifest = ImageManifest(config: configDesc, layers: [layer])
            let manifestDesc = try content.ingest(bytes: try JSON.encode(manifest), mediaType: MediaType.imageManifest, lease: lease)
            try register([Pending(record: record(manifest: manifestDesc, config: configDesc, imageConfig: config, layers: [layer]),
                                  tags: ref.map { [$0.withDefaultTag()] } ?? [])])
            return try image(configDesc.digest.string)
        } catch {
            content.endLease(lease)
            _ = try? collectGarbage()
            throw error
        }
    }
}

/// An image config with Docker's top-level `comment`, which `docker image inspect` shows.
private struct CommentedConfig: Encodable {
    var config: ImageConfig
    var comment: String
    enum CodingKeys: String, CodingKey { case comment }

    func encode(to encoder: any Encoder) throws {
        try config.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(comment, forKey: .comment)
    }
}

/// The Dockerfile instructions `docker import --change` and `docker commit --change` accept:
/// CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR.
/// Variables (`$VAR`) are not expanded.
public enum ConfigChange {
    public static func apply(_ lines: [String], to c: inout ContainerConfig) throws {
        var cmdSet = false
        for line in lines {
            let text = trim(Substring(line))
            if text.isEmpty || text.hasPrefix("#") { continue }
            let keyword = text.prefix { !$0.isWhitespace }
            let rest = trim(text.dropFirst(keyword.count))
            func need() throws {
                if rest.isEmpty { throw ImageError.invalid("\(keyword.uppercased()) requires at least one argument") }
            }
            switch keyword.uppercased() {
            case "CMD":
                try need()
                c.cmd = command(rest)
                cmdSet = true
            case "ENTRYPOINT":
                try need()
                c.entrypoint = command(rest)
                // As in a Dockerfile: ENTRYPOINT drops a CMD that these changes did not set.
                if !cmdSet { c.cmd = nil }
            case "ENV":
                try need()
                var env = c.env ?? []
                for (k, v) in try pairs(rest, instruction: "ENV") {
                    if let i = env.firstIndex(where: { $0 == k || $0.hasPrefix(k + "=") }) { env[i] = k + "=" + v } else { env.append(k + "=" + v) }
                }
                c.env = env
            case "LABEL":
                try need()
                var labels = c.labels ?? [:]
                for (k, v) in try pairs(rest, instruction: "LABEL") { labels[k] = v }
                c.labels = labels
            case "WORKDIR":
                try need()
                let dir = try words(rest).joined(separator: " ")
                c.workingDir = FileSystem.clean(dir.hasPrefix("/") ? dir : (c.workingDir ?? "/") + "/" + dir)
            case "USER":
                try need()
                c.user = try words(rest).joined(separator: " ")
            case "EXPOSE":
                try need()
                var ports = c.exposedPorts ?? [:]
                for w in try words(rest) { for p in try portSpecs(w) { ports[p] = EmptyObject() } }
                c.exposedPorts = ports
            case "VOLUME":
                try need()
                var volumes = c.volumes ?? [:]
                for v in try jsonArray(rest) ?? words(rest) {
                    guard !v.isEmpty else { throw ImageError.invalid("VOLUME specified can not be an empty string") }
                    volumes[v] = EmptyObject()
                }
                c.volumes = volumes
            case "STOPSIGNAL":
                try need()
                c.stopSignal = try words(rest).first
            case "ONBUILD":
                try need()
                c.onBuild = (c.onBuild ?? []) + [String(rest)]
            default:
                throw ImageError.invalid("\(keyword.uppercased()) is not a valid change command")
            }
        }
    }

    private static func trim(_ s: Substring) -> Substring {
        var s = s
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return s
    }

    /// Exec form (a JSON array of strings) or shell form (`/bin/sh -c` the text).
    static func command(_ rest: Substring) -> [String] {
        jsonArray(rest) ?? ["/bin/sh", "-c", String(rest)]
    }

    private static func jsonArray(_ rest: Substring) -> [String]? {
        guard rest.hasPrefix("[") else { return nil }
        return try? JSONDecoder().decode([String].self, from: Data(rest.utf8))
    }

    /// Shell-like words: whitespace separates, `"…"` (with `\` escapes) and `'…'` group, a
    /// `\` outside quotes escapes the next character. Quotes are removed.
    static func words(_ s: Substring) throws -> [String] {
        try rawWords(s).map { try unquote($0) }
    }

    /// Words with their quotes still in place, so `key="a b"` stays one word.
    private static func rawWords(_ s: Substring) throws -> [Substring] {
        var out: [Substring] = []
        var start: Substring.Index?
        var quote: Character?
        var i = s.startIndex
        while i < s.endIndex {
            let ch = s[i]
            if let q = quote {
                if ch == "\\" && q == "\"" { i = s.index(after: i); if i == s.endIndex { break } } else if ch == q { quote = nil }
            } else if ch.isWhitespace {
                if let st = start { out.append(s[st..<i]); start = nil }
            } else {
                if start == nil { start = i }
                if ch == "\"" || ch == "'" { quote = ch } else if ch == "\\" {
                    i = s.index(after: i)
                    if i == s.endIndex { break }
                }
            }
            i = s.index(after: i)
        }
        if quote != nil { throw ImageError.invalid("unmatched \(quote!) in \"\(s)\"") }
        if let st = start { out.append(s[st...]) }
        return out
    }

    private static func unquote(_ w: Substring) throws -> String {
        var out = ""
        var quote: Character?
        var i = w.startIndex
        while i < w.endIndex {
            let ch = w[i]
            if let q = quote {
                if ch == q {
                    quote = nil
                } else if q == "\"" && ch == "\\", w.index(after: i) < w.endIndex, "\"\\$`".contains(w[w.index(after: i)]) {
                    i = w.index(after: i)
                    out.append(w[i])
                } else {
                    out.append(ch)
                }
            } else if ch == "\"" || ch == "'" {
                quote = ch
            } else if ch == "\\", w.index(after: i) < w.endIndex {
                i = w.index(after: i)
                out.append(w[i])
            } else {
                out.append(ch)
            }
            i = w.index(after: i)
        }
        if quote != nil { throw ImageError.invalid("unmatched \(quote!) in \"\(w)\"") }
        return out
    }

    /// `k=v k2="v 2"`, or the legacy single pair `k value with spaces`.
    static func pairs(_ rest: Substring, instruction: String) throws -> [(String, String)] {
        let raw = try rawWords(rest)
        guard let first = raw.first else { throw ImageError.invalid("\(instruction) requires at least one argument") }
        if !first.contains("=") {
            let key = try unquote(first)
            let value = trim(rest.dropFirst(first.count))
            guard !value.isEmpty else { throw ImageError.invalid("\(instruction) \(key) needs a value (\(instruction) name=value)") }
            return [(key, try unquote(value))]
        }
        return try raw.map { w in
            guard let eq = w.firstIndex(of: "=") else {
                throw ImageError.invalid("\(instruction): \"\(w)\" is not name=value (mixing forms is not allowed)")
            }
            let key = try unquote(w[..<eq])
            guard !key.isEmpty else { throw ImageError.invalid("\(instruction): empty name in \"\(w)\"") }
            return (key, try unquote(w[w.index(after: eq)...]))
        }
    }

    /// `80`, `80/udp`, `8000-8002/tcp` → `["80/tcp"]`, …
    static func portSpecs(_ spec: String) throws -> [String] {
        let parts = spec.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { throw ImageError.invalid("invalid port \"\(spec)\"") }
        let proto = parts.count == 2 ? parts[1].lowercased() : "tcp"
        guard ["tcp", "udp", "sctp"].contains(proto) else { throw ImageError.invalid("invalid protocol \"\(proto)\" in \"\(spec)\"") }
        let range = parts[0].split(separator: "-", omittingEmptySubsequences: false)
        guard range.count <= 2, let low = Int(range[0]), let high = range.count == 2 ? Int(range[1]) : low,
              low >= 1, high <= 65535, low <= high else {
            throw ImageError.invalid("invalid port \"\(spec)\": want a port (1-65535) or range, with /tcp, /udp or /sctp")
        }
        return (low...high).map { "\($0)/\(proto)" }
    }

}
