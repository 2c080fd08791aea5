/// The query of a request URL, decoded as Go's `url.ParseQuery` does (`+` is a space, `%XX`
/// escapes), keeping repeated keys in order.
public struct QueryItems: Sendable, Equatable {
    public private(set) var items: [(name: String, value: String)]

    public init(_ items: [(name: String, value: String)] = []) { self.items = items }

    /// Parses `a=1&b=x+y&c`, without the leading `?`.
    public init(parsing query: Substring) {
        var items: [(name: String, value: String)] = []
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let name: Substring
            let value: Substring
            if let eq = pair.firstIndex(of: "=") {
                name = pair[..<eq]
                value = pair[pair.index(after: eq)...]
            } else {
                name = pair
                value = ""
            }
            guard let n = percentDecode(name, plusIsSpace: true), let v = percentDecode(value, plusIsSpace: true) else { continue }
            items.append((n, v))
        }
        self.items = items
    }

    public static func == (a: QueryItems, b: QueryItems) -> Bool {
        a.items.count == b.items.count && zip(a.items, b.items).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    /// The first value of `name`, as Go's `r.FormValue`; nil if absent.
    public subscript(name: String) -> String? { items.first { $0.name == name }?.value }

    /// Every value of `name` in order (`?filter=a&filter=b`).
    public func all(_ name: String) -> [String] { items.filter { $0.name == name }.map(\.value) }

    public func contains(_ name: String) -> Bool { items.contains { $0.name == name } }

    /// Docker's `httputils.BoolValue`: false for absent, empty, `0`, `no`, `false`, `none`
    /// (any case, trimmed); true otherwise, so `1`, `true`, `True` and `yes` are all true.
    public func bool(_ name: String) -> Bool { Self.dockerBool(self[name] ?? "") }

    /// Docker's `httputils.BoolValueOrDefault`: `defaultValue` when `name` is absent.
    public func bool(_ name: String, default defaultValue: Bool) -> Bool {
        guard let value = self[name] else { return defaultValue }
        return Self.dockerBool(value)
    }

    /// An integer parameter; nil if absent or empty, 400 if not a number.
    public func int(_ name: String) throws(HTTPError) -> Int? {
        guard let text = self[name], !text.isEmpty else { return nil }
        guard let n = Int(text) else { throw .badRequest("invalid value for \(name): \(text) is not a number") }
        return n
    }

    static func dockerBool(_ raw: String) -> Bool {
        let s = raw.trimmingASCIIWhitespace().lowercased()
        return !(s.isEmpty || s == "0" || s == "no" || s == "false" || s == "none")
    }
}

extension String {
    func trimmingASCIIWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[start...end])
    }
}

/// `%XX` decoding of a URL component; nil for a malformed escape.
func percentDecode(_ text: Substring, plusIsSpace: Bool) -> String? {
    if !text.utf8.contains(where: { $0 == UInt8(ascii: "%") || (plusIsSpace && $0 == UInt8(ascii: "+")) }) {
        return String(text)
    }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(text.utf8.count)
    var it = text.utf8.makeIterator()
    while let b = it.next() {
        switch b {
        case UInt8(ascii: "%"):
            guard let h = it.next().flatMap(hexValue), let l = it.next().flatMap(hexValue) else { return nil }
            bytes.append(h << 4 | l)
        case UInt8(ascii: "+") where plusIsSpace:
            bytes.append(UInt8(ascii: " "))
        default:
            bytes.append(b)
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}

private func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
    default: nil
    }
}
