import NIOHTTP1

/// Answers one request. Throw `HTTPError` (or the user's own errors, which its
/// `ServicePolicy` turns into responses).
public typealias RouteHandler = @Sendable (Request) async throws -> Response

/// Routes by method and path pattern: `{name}` matches one path segment and `{name:.*}` one or
/// more (image references contain slashes: `/images/{name:.*}/json`). Routes are tried in
/// registration order, so a literal route registered before a catch-all wins.
public struct Router: Sendable {
    struct Route: Sendable {
        let method: HTTPMethod
        let pattern: RoutePattern
        let handler: RouteHandler
    }

    private(set) var routes: [Route] = []
    /// An optional first segment every route also answers under (Docker's `/v1.47`).
    public var prefix: PathPrefix?

    public init(prefix: PathPrefix? = nil) { self.prefix = prefix }

    public mutating func add(_ method: HTTPMethod, _ pattern: String, _ handler: @escaping RouteHandler) {
        routes.append(Route(method: method, pattern: RoutePattern(pattern), handler: handler))
    }

    public mutating func get(_ pattern: String, _ handler: @escaping RouteHandler) { add(.GET, pattern, handler) }
    public mutating func head(_ pattern: String, _ handler: @escaping RouteHandler) { add(.HEAD, pattern, handler) }
    public mutating func post(_ pattern: String, _ handler: @escaping RouteHandler) { add(.POST, pattern, handler) }
    public mutating func put(_ pattern: String, _ handler: @escaping RouteHandler) { add(.PUT, pattern, handler) }
    public mutating func patch(_ pattern: String, _ handler: @escaping RouteHandler) { add(.PATCH, pattern, handler) }
    public mutating func delete(_ pattern: String, _ handler: @escaping RouteHandler) { add(.DELETE, pattern, handler) }

    /// A request target resolved to a route.
    public struct Match: Sendable {
        public let handler: RouteHandler
        public let pattern: String
        /// Decoded path without the prefix.
        public let path: String
        public let pathParameters: [String: String]
        public let query: QueryItems
        /// The prefix segment the path began with, if any.
        public let prefix: String?
    }

    /// Resolves `uri` (path and query as sent): 404 `page not found`, 405 for a known path
    /// with another method, or what the prefix's `check` says once a route matched.
    public func resolve(method: HTTPMethod, uri: String) -> Result<Match, HTTPError> {
        let target = uri.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
        let pathPart: Substring
        let query: QueryItems
        if let q = target.firstIndex(of: "?") {
            pathPart = target[..<q]
            query = QueryItems(parsing: target[target.index(after: q)...])
        } else {
            pathPart = target
            query = QueryItems()
        }
        var segments: [String] = []
        for raw in pathPart.split(separator: "/") {
            guard let decoded = percentDecode(raw, plusIsSpace: false) else { return .failure(.pageNotFound) }
            segments.append(decoded)
        }

        var matchedPrefix: String?
        if let prefix, let first = segments.first, prefix.recognizes(first) {
            segments.removeFirst()
            matchedPrefix = first
        }

        var pathMatched = false
        for route in routes {
            guard let params = route.pattern.match(segments) else { continue }
            guard route.method == method else {
                pathMatched = true
                continue
            }
            if let prefix, let refusal = prefix.check(matchedPrefix) { return .failure(refusal) }
            return .success(Match(
                handler: route.handler, pattern: route.pattern.text, path: "/" + segments.joined(separator: "/"),
                pathParameters: params, query: query, prefix: matchedPrefix))
        }
        return .failure(pathMatched ? .methodNotAllowed : .pageNotFound)
    }
}

/// An optional leading path segment (an API version, say): which segments are one, and a check
/// run once a route matched (dockerd checks the version only then), which may refuse it.
public struct PathPrefix: Sendable {
    public let recognizes: @Sendable (String) -> Bool
    public let check: @Sendable (String?) -> HTTPError?

    public init(recognizes: @escaping @Sendable (String) -> Bool, check: @escaping @Sendable (String?) -> HTTPError? = { _ in nil }) {
        self.recognizes = recognizes
        self.check = check
    }
}

/// A route path such as `/containers/{id}/json`.
struct RoutePattern: Sendable {
    enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
        /// `{name:.*}`: one or more whole segments, joined with `/`.
        case rest(String)
    }

    let text: String
    let segments: [Segment]

    init(_ text: String) {
        self.text = text
        segments = text.split(separator: "/").map { part in
            guard part.hasPrefix("{"), part.hasSuffix("}") else { return .literal(String(part)) }
            let inner = part.dropFirst().dropLast()
            if let colon = inner.firstIndex(of: ":") {
                let name = String(inner[..<colon])
                return inner[inner.index(after: colon)...] == ".*" ? .rest(name) : .parameter(name)
            }
            return .parameter(String(inner))
        }
    }

    func match(_ path: [String]) -> [String: String]? {
        var params: [String: String] = [:]
        return match(0, path[...], &params) ? params : nil
    }

    private func match(_ index: Int, _ path: ArraySlice<String>, _ params: inout [String: String]) -> Bool {
        guard index < segments.count else { return path.isEmpty }
        guard let head = path.first else { return false }
        switch segments[index] {
        case .literal(let text):
            return head == text && match(index + 1, path.dropFirst(), &params)
        case .parameter(let name):
            params[name] = head
            return match(index + 1, path.dropFirst(), &params)
        case .rest(let name):
            // Greedy, giving segments back until the rest of the pattern matches.
            let remainingFixed = segments.count - index - 1
            var take = path.count - remainingFixed
            while take >= 1 {
                var attempt = params
                if match(index + 1, path.dropFirst(take), &attempt) {
                    params = attempt
                    params[name] = path.prefix(take).joined(separator: "/")
                    return true
                }
                take -= 1
            }
            return false
        }
    }
}
