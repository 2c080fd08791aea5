import BerthEngine
import FoundationEssentials
import Glibc
import NIOCore

/// Image routes: a thin translation onto `Engine`.
public struct ImageRoutes: Sendable {
    let engine: Engine

    public init(engine: Engine) { self.engine = engine }

    public func register(on router: inout Router) {
        let engine = self.engine

        // Literal routes before the catch-alls.
        router.post("/images/load") { request in
            let path = Self.temporaryPath(engine, "load")
            defer { unlink(path) }
            try await RequestBody.save(request.body, to: path)
            let loaded = try await mapped { try await engine.loadImages(path: path) }
            // dockerd reports what it loaded even with quiet=1 (quiet only hides progress bars).
            return .stream(contentType: "application/json") { out in
                for image in loaded {
                    try await out.writeJSON(["stream": image.tagged ? "Loaded image: \(image.name)\n" : "Loaded image ID: \(image.name)\n"])
                }
            }
        }
        router.post("/images/create") { request in
            let query = request.query
            guard let source = query["fromSrc"], !source.isEmpty else {
                if let image = query["fromImage"], !image.isEmpty {
                    return try await DistributionRoutes.pull(engine: engine, request: request)
                }
                throw APIError.badRequest("either fromSrc or fromImage is required")
            }
            guard source == "-" else {
                throw APIError.notImplemented("importing from a URL (\(source)) is not supported: send the tarball as the request body (fromSrc=-)")
            }
            let path = Self.temporaryPath(engine, "import")
            defer { unlink(path) }
            try await RequestBody.save(request.body, to: path)
            let id = try await mapped {
                try await engine.importImage(path: path, repo: query["repo"] ?? "", tag: query["tag"] ?? "",
                                             changes: query.all("changes"), message: query["message"] ?? "")
            }
            // dockerd's import answers with one progress message carrying the new ID.
            return .stream(contentType: "application/json") { out in try await out.writeJSON(["status": id]) }
        }
        router.get("/images/json") { request in
            let filters = try Filters(parsing: request.query["filters"], allowed: Engine.imageFilterKeys)
            var values = filters.values
            // API < 1.25 spelled the reference filter as its own parameter.
            if let filter = request.query["filter"], !filter.isEmpty { values["reference", default: []].append(filter) }
            let images = try await mapped {
                try await engine.imageSummaries(filters: values, sharedSize: request.query.bool("shared-size"))
            }
            return try .json(images.map(DockerImageSummary.init))
        }
        router.get("/images/get") { request in
            try await Self.save(engine, names: request.query.all("names"))
        }
        router.post("/images/prune") { request in
            let filters = try Filters(parsing: request.query["filters"], allowed: Engine.imagePruneFilterKeys)
            let result = try await mapped { try await engine.pruneImages(filters: filters.values) }
            return try .json(DockerImagePruneResponse(imagesDeleted: result.deleted.map(DockerImageDeleteItem.init),
                                                      spaceReclaimed: result.reclaimed))
        }
        router.get("/images/{name:.*}/json") { request in
            let d = try await mapped { try await engine.imageDetails(request.parameter("name")) }
            return try .json(DockerImageInspect(d, config: d.config, apiVersion: request.apiVersion))
        }
        router.get("/images/{name:.*}/history") { request in
            let history = try await mapped { try await engine.imageHistory(request.parameter("name")) }
            return try .json(history.map(DockerImageHistoryItem.init))
        }
        router.get("/images/{name:.*}/get") { request in
            try await Self.save(engine, names: [request.parameter("name")])
        }
        router.post("/images/{name:.*}/tag") { request in
            try await mapped {
                try await engine.tagImage(request.parameter("name"), repo: request.query["repo"] ?? "", tag: request.query["tag"] ?? "")
            }
            return Response(status: .created)
        }
        router.delete("/images/{name:.*}") { request in
            // `noprune` concerns parent images, which images here never have.
            let items = try await mapped { try await engine.removeImage(request.parameter("name"), force: request.query.bool("force")) }
            return try .json(items.map(DockerImageDeleteItem.init))
        }
    }

    private static func temporaryPath(_ engine: Engine, _ what: String) -> String {
        "\(engine.root)/tmp/\(what)-\(UInt64.random(in: 0...UInt64.max)).tar"
    }

    /// `docker save`: the archive is written to a file first, so an unknown name is a 404
    /// before any byte is sent, then streamed from the unlinked file.
    private static func save(_ engine: Engine, names: [String]) async throws -> Response {
        let path = temporaryPath(engine, "save")
        let fd: Int32
        do {
            try await mapped { try engine.saveImages(names, to: path) }
            fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw APIError.internalError("cannot open \(path)") }
            unlink(path)
        } catch {
            unlink(path)
            throw error
        }
        return .stream(contentType: "application/x-tar") { out in
            defer { close(fd) }
            var chunk = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                guard n >= 0 else { throw APIError.internalError("reading the saved archive failed") }
                if n == 0 { return }
                try await out.write(ByteBuffer(bytes: chunk[0..<n]))
            }
        }
    }
}
