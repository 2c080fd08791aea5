import BerthEngine
import NIOHTTP1

/// Endpoints of features Berth does not have yet, answered as dockerd answers where it can be
/// done without the feature (no plugins are installed; an unknown container is a 404) and with
/// 501 naming what is missing otherwise: never a bare 404 "page not found", which clients read
/// as a wrong API version.
public struct UnservedRoutes: Sendable {
    let engine: Engine

    public init(engine: Engine) { self.engine = engine }

    public func register(on router: inout Router) {
        router.get("/plugins") { _ in try .json([String]()) }
        router.get("/plugins/privileges") { _ in try .json([String]()) }
        let noPlugin: RouteHandler = { request in
            throw APIError.notFound("plugin \"\(request.parameter("name"))\" not found")
        }
        router.get("/plugins/{name}/json", noPlugin)
        router.delete("/plugins/{name}", noPlugin)
        router.post("/plugins/{name}/enable", noPlugin)
        router.post("/plugins/{name}/disable", noPlugin)
        router.post("/plugins/{name}/push", noPlugin)
        router.post("/plugins/{name}/set", noPlugin)
        router.post("/plugins/{name}/upgrade", noPlugin)
        router.post("/plugins/pull") { _ in throw APIError.notImplemented("plugins are not supported by Berth") }
        router.post("/plugins/create") { _ in throw APIError.notImplemented("plugins are not supported by Berth") }

        // Container features still to come: the container is looked up first, as dockerd does.
        let engine = self.engine
        let containerFeature: (String) -> RouteHandler = { feature in
            { request in
                let ref = request.parameter("id").isEmpty ? (request.query["container"] ?? "") : request.parameter("id")
                _ = try await mapped { try await engine.container(ref) }
                throw APIError.notImplemented("\(feature) is not supported by Berth yet")
            }
        }
        router.post("/commit", containerFeature("docker commit"))
        router.get("/containers/{id}/export", containerFeature("docker export"))
        router.get("/containers/{id}/changes", containerFeature("docker diff"))
        router.get("/containers/{id}/archive", containerFeature("docker cp"))
        router.put("/containers/{id}/archive", containerFeature("docker cp"))
        router.post("/build") { _ in throw APIError.notImplemented("image builds are not supported by Berth yet") }
        router.post("/session") { _ in throw APIError.badRequest("no upgrade proto in request") }
    }
}
