import BerthImages
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
        self[key].allSatisfy { LabelFilter.holds($0, in: labels) }
    }
}
