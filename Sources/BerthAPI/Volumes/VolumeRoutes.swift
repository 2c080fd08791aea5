import BerthEngine

/// Volume routes: a thin translation onto `Engine`.
public struct VolumeRoutes: Sendable {
    let engine: Engine

    public init(engine: Engine) { self.engine = engine }

    static let listFilters: Set<String> = ["dangling", "driver", "label", "name"]
    static let pruneFilters: Set<String> = ["all", "label", "label!"]

    public func register(on router: inout Router) {
        let engine = self.engine

        // Literal routes before `{name}`.
        router.get("/volumes") { request in
            let filters = try Filters(parsing: request.query["filters"], allowed: Self.listFilters)
            let dangling = try Self.flag(filters, "dangling")
            let list = await engine.listVolumes().filter { v in
                (dangling.map { $0 == v.users.isEmpty } ?? true)
                    && filters.accepts("name") { v.name.contains($0) }
                    && filters.accepts("driver") { $0 == v.driver }
                    && filters.acceptsLabels(v.labels)
            }
            return try .json(DockerVolumeList(volumes: list.map { DockerVolume($0) }))
        }
        router.post("/volumes/create") { request in
            let body = try await request.decodeJSONIfPresent(DockerVolumeCreateRequest.self)
            let volume = try await mapped {
                try await engine.createVolume(name: body?.name, driver: body?.driver, labels: body?.labels ?? [:],
                                              options: body?.driverOpts ?? [:])
            }
            return try .json(DockerVolume(volume), status: .created)
        }
        router.post("/volumes/prune") { request in
            let filters = try Filters(parsing: request.query["filters"], allowed: Self.pruneFilters)
            // API 1.42 made prune spare named volumes unless `all` is set.
            let all = try Self.flag(filters, "all") ?? (request.apiVersion < "1.42")
            let pruned = await engine.pruneVolumes { v in
                (all || v.anonymous) && filters.acceptsLabels(v.labels)
                    && !filters["label!"].contains { Filters(["label": [$0]]).acceptsLabels(v.labels) }
            }
            return try .json(DockerVolumePruneResponse(volumesDeleted: pruned.deleted, spaceReclaimed: pruned.reclaimed))
        }
        router.get("/volumes/{name}") { request in
            try .json(DockerVolume(try await mapped { try await engine.volume(request.parameter("name")) }))
        }
        router.delete("/volumes/{name}") { request in
            try await mapped { try await engine.removeVolume(request.parameter("name"), force: request.query.bool("force")) }
            return .noContent()
        }
    }

    /// A boolean filter (`dangling=true`, `all=1`): nil when absent.
    static func flag(_ filters: Filters, _ key: String) throws(APIError) -> Bool? {
        guard let value = filters[key].last else { return nil }
        switch value.lowercased() {
        case "true", "1": return true
        case "false", "0": return false
        default: throw .badRequest("invalid filter '\(key)=\(value)'")
        }
    }
}
