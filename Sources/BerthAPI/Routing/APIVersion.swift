/// A Docker API version such as `1.47`, compared as dockerd's `versions.compare` does:
/// dot-separated integers, missing or unparsable parts count as 0 (`1.47` == `1.47.0`).
public struct APIVersion: Sendable, Hashable, Comparable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The version as the client wrote it.
    public let text: String
    private let parts: [Int]

    public init(_ text: String) {
        self.text = text
        var parts = text.split(separator: ".", omittingEmptySubsequences: false).map { Int($0) ?? 0 }
        while parts.count > 1, parts.last == 0 { parts.removeLast() }
        self.parts = parts
    }

    public init(stringLiteral value: String) { self.init(value) }

    public var description: String { text }

    public static func == (a: APIVersion, b: APIVersion) -> Bool { a.parts == b.parts }
    public func hash(into hasher: inout Hasher) { hasher.combine(parts) }

    public static func < (a: APIVersion, b: APIVersion) -> Bool {
        for i in 0..<max(a.parts.count, b.parts.count) {
            let x = i < a.parts.count ? a.parts[i] : 0
            let y = i < b.parts.count ? b.parts[i] : 0
            if x != y { return x < y }
        }
        return false
    }
}
