import NIOHTTP1

/// The swarm-mode endpoints on a node that is not in a swarm, as dockerd answers them: 503, "not
/// part of a swarm" for leave and "not a swarm manager" for everything a manager serves.
/// Clients (the CLI's `docker info`, compose and SDK clean-up paths) probe them and rely on
/// that answer. Starting or joining a swarm is refused the same way until services land.
public struct SwarmRoutes: Sendable {
    public init() {}

    static let notInSwarm = APIError(.serviceUnavailable, "This node is not part of a swarm")
    static let notManager = APIError(.serviceUnavailable,
                                     "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.")
    static let unsupported = APIError(.serviceUnavailable,
                                      "This node is not part of a swarm, and Berth cannot make it one yet: swarm mode is not supported")

    public func register(on router: inout Router) {
        let refuse: RouteHandler = { _ in throw Self.notManager }
        router.get("/swarm", refuse)
        router.get("/swarm/unlockkey", refuse)
        router.post("/swarm/leave") { _ in throw Self.notInSwarm }
        router.post("/swarm/update", refuse)
        router.post("/swarm/unlock", refuse)
        router.post("/swarm/init") { _ in throw Self.unsupported }
        router.post("/swarm/join") { _ in throw Self.unsupported }
        for kind in ["services", "nodes", "tasks", "secrets", "configs"] {
            router.get("/\(kind)", refuse)
            router.get("/\(kind)/{id}", refuse)
        }
        for kind in ["services", "secrets", "configs"] {
            router.post("/\(kind)/create", refuse)
            router.post("/\(kind)/{id}/update", refuse)
            router.delete("/\(kind)/{id}", refuse)
        }
        router.get("/services/{id}/logs", refuse)
        router.get("/tasks/{id}/logs", refuse)
        router.post("/nodes/{id}/update", refuse)
        router.delete("/nodes/{id}", refuse)
    }
}
