import BerthEngine
import BerthNetwork
import BerthOS

/// Network routes: a thin translation onto `Engine`.
public struct NetworkRoutes: Sendable {
    let engine: Engine

    public init(engine: Engine) { self.engine = engine }

    static let listFilters: Set<String> = ["dangling", "driver", "id", "label", "name", "scope", "type"]
    static let pruneFilters: Set<String> = ["until", "label", "label!"]

    public func register(on router: inout Router) {
        let engine = self.engine

        router.get("/networks") { request in
            let filters = try Filters(parsing: request.query["filters"], allowed: Self.listFilters)
            for t in filters["type"] where t != "custom" && t != "builtin" {
                throw APIError.badRequest("invalid filter: 'type'='\(t)'")
            }
            let dangling = try VolumeRoutes.flag(filters, "dangling")
            let list = await engine.networkList().filter { d in
                let n = d.definition
                return filters.accepts("name") { n.name.contains($0) }
                    && filters.accepts("id") { n.id.hasPrefix($0) }
                    && filters.accepts("driver") { $0 == n.driver.rawValue }
                    && filters.accepts("scope") { $0 == "local" }
                    && filters.accepts("type") { ($0 == "builtin") == n.isBuiltin }
                    && filters.acceptsLabels(n.labels)
                    && (dangling.map { $0 == (d.members.isEmpty && !n.isBuiltin) } ?? true)
            }
            return try .json(list.map { DockerNetwork($0, withContainers: false) })
        }
        router.post("/networks/create") { request in
            let body = try await request.decodeJSON(DockerNetworkCreateRequest.self)
            if body.ingress == true { throw APIError.notImplemented("ingress networks need swarm mode, which Berth does not have") }
            if let driver = body.ipam?.driver, !driver.isEmpty, driver != "default" {
                throw APIError.notFound("plugin \"\(driver)\" not found")
            }
            var create = NetworkCreateRequest(name: body.name, driver: body.driver ?? "bridge")
            create.isInternal = body.isInternal ?? false
            create.attachable = body.attachable ?? false
            create.enableIPv6 = body.enableIPv6 ?? false
            let configs = body.ipam?.config ?? []
            let v4 = configs.filter { !($0.subnet ?? "").contains(":") }
            let v6 = configs.filter { ($0.subnet ?? "").contains(":") }
            guard v4.count <= 1, v6.count <= 1 else {
                throw APIError.badRequest("only one IPv4 and one IPv6 subnet per network are supported")
            }
            if !v6.isEmpty, body.enableIPv6 != true {
                throw APIError.badRequest("an IPv6 subnet needs IPv6 enabled on the network (--ipv6)")
            }
            create.subnet = v4.first?.subnet
            create.gateway = v4.first?.gateway
            create.ipRange = v4.first?.ipRange
            create.subnet6 = v6.first?.subnet
            create.gateway6 = v6.first?.gateway
            create.options = body.options ?? [:]
            create.labels = body.labels ?? [:]
            create.ipamOptions = body.ipam?.options ?? [:]
            let made = try await mapped { try await engine.createNetwork(create) }
            return try .json(DockerNetworkCreateResponse(id: made.definition.id), status: .created)
        }
        router.post("/networks/prune") { request in
            let filters = try Filters(parsing: request.query["filters"], allowed: Self.pruneFilters)
            let now = Timestamp.nowNanoseconds()
            let until = try filters["until"].last.map { text throws(APIError) in
                guard let n = Timestamp.nanoseconds(query: text, now: now) else {
                    throw .badRequest("failed to parse value as time or duration: \"\(text)\"")
                }
                return n
            }
            let deleted = await engine.pruneNetworks { d in
                let n = d.definition
                if let until, let created = Timestamp.nanoseconds(rfc3339: n.created), created > until { return false }
                return filters.acceptsLabels(n.labels)
                    && !filters["label!"].contains { Filters(["label": [$0]]).acceptsLabels(n.labels) }
            }
            return try .json(DockerNetworkPruneResponse(networksDeleted: deleted))
        }
        router.get("/networks/{id}") { request in
            try .json(DockerNetwork(try await mapped { try await engine.networkDetails(request.parameter("id")) }, withContainers: true))
        }
        router.delete("/networks/{id}") { request in
            try await mapped { try await engine.removeNetwork(request.parameter("id")) }
            return .noContent()
        }
        router.post("/networks/{id}/connect") { request in
            let body = try await request.decodeJSON(DockerNetworkConnectRequest.self)
            try await mapped {
                try await engine.connect(network: request.parameter("id"), container: body.container,
                                         aliases: body.endpointConfig?.aliases ?? [],
                                         ipv4: body.endpointConfig?.ipamConfig?.ipv4Address,
                                         ipv6: body.endpointConfig?.ipamConfig?.ipv6Address)
            }
            return Response(status: .ok)
        }
        router.post("/networks/{id}/disconnect") { request in
            let body = try await request.decodeJSON(DockerNetworkDisconnectRequest.self)
            try await mapped {
                try await engine.disconnect(network: request.parameter("id"), container: body.container, force: body.force ?? false)
            }
            return Response(status: .ok)
        }
    }
}
