import NIOHTTP1

/// Answers one request. Throw `APIError` for Docker's error responses.
public typealias RouteHandler = @Sendable (Request) async throws -> Response

/// Routes as dockerd registers them: each pattern answers both with and without a `/v1.NN`
/// prefix, `{name}` matches one path segment and `{name:.*}` one or more (image references
/// contain slashes: `/images/{name:.*}/json`). Routes are tried in registration order, so a
/// literal route registered before a catch-all wins (`/images/json` before `/images/{name:.*}/json`).
public struct Router: Sendable {
    struct Route: Sendable {
        let method: HTTPMethod
        let pattern: RoutePattern
        let handler: RouteHandler
    }

    private(set) var routes: [Route] = []

    public init() {}

    public mutating func add(_ method: HTTPMethod, _ pattern: String, _ handler: @escaping RouteHandler) {
        routes.append(Route(method: method, pattern: RoutePattern(pattern), handler: handler))
    }

    public mutating func get(_ pattern: String, _ handler: @escaping RouteHandler) { add(.GET, pattern, handler) }
    public mutating func head(_ pattern: String, _ handler: @escaping RouteHandler) { add(.HEAD, pattern, handler) }
    public mutating func post(_ pattern: String, _ handler: @escaping RouteHandler) { add(.POST, pattern, handler) }
    public mutating func put(_ pattern: String, _ handler: @escaping RouteHandler) { add(.PUT, pattern, handler) }
    public mutating func delete(_ pattern: String, _ handler: @escaping RouteHandler) { add(.DELETE, pattern, handler) }

    /// A request target resolved to a route.
    public struct Match: Sendable {
        public let handler: RouteHandler
        public let pattern: String
        /// Decoded path without the version prefix.
        public let path: String
        public let pathParameters: [String: String]
        public let query: QueryItems
        public let apiVersion: APIVersion
    }

    /// Resolves `uri` (path and query as sent). Fails with dockerd's errors: 400 for a version
    /// outside 1.24...1.47, 404 `page not found`, 405 for a known path with another method.
    public func resolve(method: HTTPMethod, uri: String) -> Result<Match, APIError> {
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

        var version = BerthAPI.maximumVersion
        if let first = segments.first, let v = Self.versionPrefix(first) {
            segments.removeFirst()
            version = v
        }

        var pathMatched = false
        for route in routes {
            guard let params = route.pattern.match(segments) else { continue }
            guard route.method == method else {
                pathMatched = true
                continue
            }
            // dockerd checks the version only once a route matched (the middleware wraps routes).
            if version < BerthAPI.minimumVersion { return .failure(.versionTooOld(version)) }
            if version > BerthAPI.maximumVersion { return .failure(.versionTooNew(version)) }
            return .success(Match(
                handler: route.handler, pattern: route.pattern.text, path: "/" + segments.joined(separator: "/"),
                pathParameters: params, query: query, apiVersion: version))
        }
        return .failure(pathMatched ? .methodNotAllowed : .pageNotFound)
    }

    /// `v1.47` → 1.47, as dockerd's `/v{version:[0-9.]+}` matcher.
    static func versionPrefix(_ segment: String) -> APIVersion? {
        guard segment.count > 1, segment.first == "v" else { return nil }
        let digits = segment.dropFirst()
        guard digits.allSatisfy({ $0 == "." || ("0"..."9").contains($0) }) else { return nil }
        return APIVersion(String(digits))
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
