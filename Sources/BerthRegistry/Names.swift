/// Repository names and tags as the distribution spec's "Pulling manifests" section defines
/// them: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*` and
/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
public enum Names {
    /// distribution's limit on a whole name (`reference.NameTotalLengthMax`).
    static let maximumNameLength = 255

    public static func isValidRepository(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= maximumNameLength else { return false }
        return name.split(separator: "/", omittingEmptySubsequences: false).allSatisfy(isValidComponent)
    }

    /// One path component: alphanumeric runs joined by `.`, `_`, `__` or any run of `-`.
    static func isValidComponent(_ component: Substring) -> Bool {
        var previous: UInt8?  // the last byte, nil at the start
        var separatorRun: [UInt8] = []
        for byte in component.utf8 {
            if isLowerAlphanumeric(byte) {
                if !separatorRun.isEmpty {
                    guard previous != nil, isValidSeparator(separatorRun) else { return false }
                    separatorRun = []
                }
                previous = byte
            } else if byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") {
                guard previous != nil else { return false }
                separatorRun.append(byte)
            } else {
                return false
            }
        }
        return previous != nil && separatorRun.isEmpty
    }

    private static func isValidSeparator(_ run: [UInt8]) -> Bool {
        run == [UInt8(ascii: ".")] || run == [UInt8(ascii: "_")] || run == [UInt8(ascii: "_"), UInt8(ascii: "_")]
            || run.allSatisfy { $0 == UInt8(ascii: "-") }
    }

    private static func isLowerAlphanumeric(_ b: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(b) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b)
    }

    public static func isValidTag(_ tag: String) -> Bool {
        let bytes = Array(tag.utf8)
        guard let first = bytes.first, bytes.count <= 128 else { return false }
        let word: (UInt8) -> Bool = { b in
            isLowerAlphanumeric(b) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(b) || b == UInt8(ascii: "_")
        }
        return word(first) && bytes.dropFirst().allSatisfy { word($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }
}

/// A byte range of a blob (inclusive bounds), from a `Range: bytes=...` request header
/// (RFC 9110 §14.1.2; one range only) or a `Content-Range: start-end` upload chunk header.
public struct ByteRange: Sendable, Equatable {
    public var first: Int64
    public var last: Int64

    public init(first: Int64, last: Int64) {
        self.first = first
        self.last = last
    }

    public var count: Int64 { last - first + 1 }

    /// `bytes=0-99`, `bytes=100-` or `bytes=-100` against a blob of `size` bytes; nil when the
    /// header asks for nothing this blob has (a 416) or is not a single byte range.
    public static func parse(requestHeader text: String, size: Int64) -> ByteRange? {
        guard text.hasPrefix("bytes="), !text.contains(",") else { return nil }
        let spec = text.dropFirst("bytes=".count)
        guard let dash = spec.firstIndex(of: "-") else { return nil }
        let start = spec[..<dash].trimmingSpaces
        let end = spec[spec.index(after: dash)...].trimmingSpaces
        if start.isEmpty {
            guard let suffix = Int64(end), suffix > 0, size > 0 else { return nil }
            return ByteRange(first: max(0, size - suffix), last: size - 1)
        }
        guard let first = Int64(start), first >= 0, first < size else { return nil }
        if end.isEmpty { return ByteRange(first: first, last: size - 1) }
        guard let last = Int64(end), last >= first else { return nil }
        return ByteRange(first: first, last: min(last, size - 1))
    }

    /// An upload chunk's `Content-Range: 0-1023` (the spec's form, no `bytes ` unit; the unit is
    /// accepted too, as some clients send it).
    public static func parse(contentRange text: String) -> ByteRange? {
        var spec = Substring(text).trimmingSpaces
        if spec.hasPrefix("bytes ") { spec = spec.dropFirst("bytes ".count) }
        if let slash = spec.firstIndex(of: "/") { spec = spec[..<slash] }
        guard let dash = spec.firstIndex(of: "-"),
              let first = Int64(spec[..<dash]), let last = Int64(spec[spec.index(after: dash)...]),
              first >= 0, last >= first
        else { return nil }
        return ByteRange(first: first, last: last)
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return s
    }
}
