import BerthDistribution
import BerthEngine
import FoundationEssentials

/// Registry routes: pull (the `fromImage` form of `POST /images/create`), push, login and
/// distribution inspect; a thin translation onto `Engine`, with dockerd's streamed progress.
public struct DistributionRoutes: Sendable {
    let engine: Engine

    public init(engine: Engine) { self.engine = engine }

    public func register(on router: inout Router) {
        let engine = self.engine
        router.post("/images/{name:.*}/push") { request in
            let progress = try await Self.registryMapped {
                try await engine.pushImage(request.parameter("name"), tag: request.query["tag"] ?? "",
                                           auth: request.headers.first(name: "X-Registry-Auth"))
            }
            return Self.stream(progress)
        }
        router.post("/auth") { request in
            let body = try await request.decodeJSON(AuthConfig.self)
            let identityToken = try await Self.registryMapped {
                try await engine.login(username: body.username ?? "", password: body.password ?? "",
                                       serverAddress: body.serveraddress ?? "", identityToken: body.identitytoken ?? "")
            }
            return try .json(AuthResponse(status: "Login Succeeded", identityToken: identityToken ?? ""))
        }
        router.get("/images/search") { request in
            let filters = try Filters(parsing: request.query["filters"], allowed: ["is-automated", "is-official", "stars"])
            func flag(_ key: String) throws(APIError) -> Bool? {
                guard let value = filters[key].last else { return nil }
                guard value == "true" || value == "false" else { throw .badRequest("invalid filter '\(key)=\(value)'") }
                return value == "true"
            }
            let stars = try filters["stars"].map { text throws(APIError) -> Int in
                guard let n = Int(text) else { throw .badRequest("invalid filter 'stars=\(text)'") }
                return n
            }.max() ?? 0
            let limit = try request.query.int("limit") ?? 25
            guard (1...100).contains(limit) else { throw APIError.badRequest("limit \(limit) is outside the range of [1, 100]") }
            let term = request.query["term"] ?? ""
            let isOfficial = try flag("is-official"), isAutomated = try flag("is-automated")
            let results = try await Self.registryMapped {
                try await engine.searchImages(term, limit: limit, isOfficial: isOfficial, isAutomated: isAutomated,
                                              minimumStars: stars, auth: request.headers.first(name: "X-Registry-Auth"))
            }
            return try .json(results)
        }
        router.get("/distribution/{name:.*}/json") { request in
            let d = try await Self.registryMapped {
                try await engine.inspectDistribution(request.parameter("name"), auth: request.headers.first(name: "X-Registry-Auth"))
            }
            return try .json(DistributionInspect(
                descriptor: .init(mediaType: d.mediaType, digest: d.digest, size: d.size),
                platforms: d.platforms.map { .init(architecture: $0.architecture, os: $0.os, variant: $0.variant) }))
        }
    }

    /// `POST /images/create?fromImage=&tag=&platform=`, called by `ImageRoutes`.
    static func pull(engine: Engine, request: Request) async throws -> Response {
        let query = request.query
        let progress = try await registryMapped {
            try await engine.pullImage(query["fromImage"] ?? "", tag: query["tag"] ?? "", platform: query["platform"] ?? "",
                                       auth: request.headers.first(name: "X-Registry-Auth"))
        }
        return stream(progress)
    }

    /// The progress as dockerd's JSON messages; an error once the stream started is its last
    /// message (`errorDetail`), as the status line is already sent.
    private static func stream(_ progress: AsyncThrowingStream<TransferProgress, any Error>) -> Response {
        .stream(contentType: "application/json") { out in
            var iterator = progress.makeAsyncIterator()
            while true {
                let next: TransferProgress?
                do { next = try await iterator.next() } catch {
                    let message = (error as? EngineError)?.message ?? (error as? RegistryAuthenticationError)?.message ?? "\(error)"
                    try await out.writeJSON(ProgressMessage(errorDetail: .init(message: message), error: message))
                    return
                }
                guard let next else { return }
                try await out.writeJSON(ProgressMessage(next))
            }
        }
    }

    /// `mapped`, plus 401 for credentials a registry refused.
    private static func registryMapped<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        do { return try await mapped(body) } catch let error as RegistryAuthenticationError {
            throw APIError(.unauthorized, error.message)
        }
    }
}

/// jsonmessage.JSONMessage as dockerd streams it.
struct ProgressMessage: Encodable {
    struct Detail: Encodable {
        var current: Int64?
        var total: Int64?
    }

    struct ErrorDetail: Encodable {
        var message: String
    }

    struct Aux: Encodable {
        var tag: String
        var digest: String
        var size: Int
        enum CodingKeys: String, CodingKey { case tag = "Tag", digest = "Digest", size = "Size" }
    }

    var status: String?
    var progressDetail: Detail?
    var progress: String?
    var id: String?
    var aux: Aux?
    var errorDetail: ErrorDetail?
    var error: String?

    init(errorDetail: ErrorDetail, error: String) {
        self.errorDetail = errorDetail
        self.error = error
    }

    init(_ p: TransferProgress) {
        if let pushed = p.pushed {
            progressDetail = Detail()
            aux = Aux(tag: pushed.tag, digest: pushed.digest, size: pushed.size)
            return
        }
        status = p.status
        id = p.id
        // Layer lines carry progressDetail (empty unless there are byte counts), as dockerd's do.
        if p.id != nil && !p.status.hasPrefix("Pulling from") {
            progressDetail = Detail(current: p.current, total: p.current == nil ? nil : p.total)
            progress = p.progressText
        }
    }
}

/// `POST /auth` body (registry.AuthConfig).
struct AuthConfig: Decodable {
    var username: String?
    var password: String?
    var serveraddress: String?
    var identitytoken: String?
}

struct AuthResponse: Encodable {
    var status: String
    var identityToken: String
    enum CodingKeys: String, CodingKey { case status = "Status", identityToken = "IdentityToken" }
}

/// `GET /distribution/{name}/json` (registry.DistributionInspect).
struct DistributionInspect: Encodable {
    struct Descriptor: Encodable {
        var mediaType: String
        var digest: String
        var size: Int64
    }

    struct Platform: Encodable {
        var architecture: String
        var os: String
        var variant: String?
    }

    var descriptor: Descriptor
    var platforms: [Platform]
    enum CodingKeys: String, CodingKey { case descriptor = "Descriptor", platforms = "Platforms" }
}
