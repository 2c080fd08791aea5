/// Which images `docker images` and `docker image prune` take, as dockerd reads the `filters`
/// of `GET /images/json` and `POST /images/prune`. Every field narrows; nil or empty means any.
public struct ImageFilter: Sendable, Hashable {
    /// true: only images without a tag; false: only images with a tag or digest.
    public var dangling: Bool?
    /// `key` or `key=value`; an image must carry all of them.
    public var labels: [String] = []
    /// `key` or `key=value` (prune's `label!`); an image must carry none of them.
    public var excludedLabels: [String] = []
    /// Glob patterns over familiar references (`busy*`, `busybox:*`); an image must match one,
    /// and only its matching tags are listed.
    public var references: [String] = []
    /// Only images created before (`before`) or after (`since`) the named image.
    public var before: String?
    public var since: String?
    /// Only images created before this Unix time (prune's `until`).
    public var until: Int64?

    public init(dangling: Bool? = nil, labels: [String] = [], excludedLabels: [String] = [], references: [String] = [],
                before: String? = nil, since: String? = nil, until: Int64? = nil) {
        self.dangling = dangling; self.labels = labels; self.excludedLabels = excludedLabels
        self.references = references; self.before = before; self.since = since; self.until = until
    }

    /// Whether `labels` (an image config's) satisfy the label filters.
    func matchesLabels(_ labels: [String: String]) -> Bool {
        self.labels.allSatisfy { LabelFilter.holds($0, in: labels) }
            && !excludedLabels.contains { LabelFilter.holds($0, in: labels) }
    }
}

/// One value of Docker's `label` filter (images, containers, volumes, events alike): `key`
/// holds when the label is there, `key=value` when it has that value (`key=` means empty).
public enum LabelFilter {
    public static func holds(_ filter: String, in labels: [String: String]) -> Bool {
        guard let eq = filter.firstIndex(of: "=") else { return labels[filter] != nil }
        return labels[String(filter[..<eq])] == String(filter[filter.index(after: eq)...])
    }
}

extension Reference {
    /// distribution/reference's `FamiliarMatch`: the pattern against `busybox:latest`, then
    /// against the bare familiar name `busybox`.
    public func familiarMatch(_ pattern: String) -> Bool {
        PathPattern.match(pattern, familiarString) || PathPattern.match(pattern, familiarName)
    }
}

/// Go's `path.Match`: `*` is any run of non-`/` characters, `?` one non-`/` character,
/// `[a-z]`/`[^…]` a class, `\` escapes. A malformed pattern matches nothing.
public enum PathPattern {
    public static func match(_ pattern: String, _ name: String) -> Bool {
        matchFrom(Array(pattern.unicodeScalars)[...], Array(name.unicodeScalars)[...]) ?? false
    }

    private typealias Chars = ArraySlice<Unicode.Scalar>

    /// nil for a malformed pattern.
    private static func matchFrom(_ p: Chars, _ s: Chars) -> Bool? {
        guard let c = p.first else { return s.isEmpty }
        switch c {
        case "*":
            let rest = p.dropFirst()
            var t = s
            while true {
                guard let m = matchFrom(rest, t) else { return nil }
                if m { return true }
                guard let f = t.first, f != "/" else { return false }
                t = t.dropFirst()
            }
        case "?":
            guard let f = s.first, f != "/" else { return false }
            return matchFrom(p.dropFirst(), s.dropFirst())
        case "[":
            guard let (matched, rest) = matchClass(p.dropFirst(), s.first) else { return nil }
            guard matched else { return false }
            return matchFrom(rest, s.dropFirst())
        case "\\":
            guard let escaped = p.dropFirst().first else { return nil }
            guard s.first == escaped else { return false }
            return matchFrom(p.dropFirst(2), s.dropFirst())
        default:
            guard s.first == c else { return false }
            return matchFrom(p.dropFirst(), s.dropFirst())
        }
    }

    /// A class after its `[`: whether `ch` is in it and the pattern after its `]`; nil if malformed.
    private static func matchClass(_ p: Chars, _ ch: Unicode.Scalar?) -> (Bool, Chars)? {
        var p = p
        let negated = p.first == "^"
        if negated { p = p.dropFirst() }
        var found = false
        var ranges = 0
        while true {
            guard let c = p.first else { return nil }
            if c == "]" && ranges > 0 { p = p.dropFirst(); break }
            guard let lo = escapedChar(&p) else { return nil }
            var hi = lo
            if p.first == "-" {
                p = p.dropFirst()
                guard let h = escapedChar(&p) else { return nil }
                hi = h
            }
            if let ch, lo <= ch, ch <= hi { found = true }
            ranges += 1
        }
        return (ch != nil && found != negated, p)
    }

    /// One class character; `-` and `]` must be escaped to stand for themselves, as in Go.
    private static func escapedChar(_ p: inout Chars) -> Unicode.Scalar? {
        guard var c = p.first, c != "-", c != "]" else { return nil }
        if c == "\\" {
            p = p.dropFirst()
            guard let e = p.first else { return nil }
            c = e
        }
        p = p.dropFirst()
        return c
    }
}
