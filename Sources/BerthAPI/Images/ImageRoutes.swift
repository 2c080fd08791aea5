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

        // Images. Literal routes before the catch-all.
        router.post("/images/load") { request in
            let path = "\(engine.root)/tmp/load-\(UInt64.random(in: 0...UInt64.max)).tar"
            try await RequestBody.save(request.body, to: path)
            defer { unlink(path) }
            let loaded = try await mapped { try await engine.loadImages(path: path) }
            // dockerd reports what it loaded even with quiet=1 (quiet only hides progress bars).
            return .stream(contentType: "application/json") { out in
                for image in loaded {
                    try await out.writeJSON(["stream": image.tagged ? "Loaded image: \(image.name)\n" : "Loaded image ID: \(image.name)\n"])
                }
            }
        }
        router.get("/images/json") { _ in
            let images = try await mapped { try await engine.imageSummaries() }
            return try .json(images.map {
                DockerImageSummary(id: $0.id, repoTags: $0.repoTags, repoDigests: $0.repoDigests, created: $0.created,
                                   size: $0.size, labels: $0.labels)
            })
        }
        router.get("/images/{name:.*}/json") { request in
            let d = try await mapped { try await engine.imageDetails(request.parameter("name")) }
            return try .json(DockerImageInspect(
                id: d.id, repoTags: d.repoTags, repoDigests: d.repoDigests, created: d.created, author: d.author,
                config: d.config, architecture: d.architecture, os: d.os, size: d.size, rootFS: .init(layers: d.layers)))
        }
    }
}
