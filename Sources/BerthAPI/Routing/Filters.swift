import BerthOS
import FoundationEssentials

/// Docker's `filters` query parameter: a JSON object from a key to its values, either as a list
/// (`{"label":["a=b"]}`) or in the older map form (`{"label":{"a=b":true}}`).
public struct Filters: Sendable, Equatable {
    public private(set) var values: [String: [String]] = [:]

    public init(_ values: [String: [String]] = [:]) { self.values = values }

    /// Parses `text` and checks every key against `allowed`, with dockerd's errors.
    public init(parsing text: String?, allowed: Set<String>) throws(APIError) {
        guard let text, !text.isEmpty else { return }
        guard let object = try? JSONDecoder().decode([String: FilterValues].self, from: Data(text.utf8)) else {
            throw .badRequest("invalid filter: the filters query parameter is not valid JSON: \(text)")
        }
        for (key, value) in object {
            guard allowed.contains(key) else { throw .badRequest("invalid filter '\(key)'") }
            values[key] = value.list
        }
    }

    /// One key's values in either of the two JSON forms.
    struct FilterValues: Decodable {
        var list: [String]
        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let list = try? container.decode([String].self) {
                self.list = list
            } else {
                list = try container.decode([String: Bool].self).filter(\.value).map(\.key).sorted()
            }
        }
    }

    public subscript(key: String) -> [String] { values[key] ?? [] }

    /// True when `key` is not filtered on, or one of its values satisfies `matches`.
    public func accepts(_ key: String, _ matches: (String) -> Bool) -> Bool {
        guard let wanted = values[key], !wanted.isEmpty else { return true }
        return wanted.contains(where: matches)
    }

    /// `label=k` or `label=k=v` filters against a set of labels: every one must hold.
    public func acceptsLabels(_ labels: [String: String], key: String = "label") -> Bool {
        self[key].allSatisfy { want in
            let parts = want.split(separator: "=", maxSplits: 1).map(String.init)
            guard let have = labels[parts[0]] else { return false }
            return parts.count == 1 || have == parts[1]
        }
    }
}

/// Docker's timestamps in queries (`since`, `until`): unix seconds with an optional fraction
/// (`1700000000.5`), or RFC 3339. The docker CLI turns durations like `10m` into these itself.
public enum DockerTimestamp {
    /// Nanoseconds since the epoch, or nil when `text` is not a timestamp.
    public static func nanoseconds(_ text: String) -> Int64? {
        if let dot = text.firstIndex(of: "."), let seconds = Int64(text[..<dot]) {
            let fraction = text[text.index(after: dot)...].prefix(9)
            guard fraction.allSatisfy(\.isNumber), let f = Int64(fraction.isEmpty ? "0" : fraction) else { return nil }
            var scale: Int64 = 1
            for _ in fraction.count..<9 { scale *= 10 }
            return seconds * 1_000_000_000 + f * scale
        }
        if let seconds = Int64(text) { return seconds * 1_000_000_000 }
        guard let seconds = Timestamp.unixSeconds(text) else { return nil }
        return seconds * 1_000_000_000
    }
}
