import BerthEngine
import BerthOS

/// `GET /system/df`, and the build-cache prune of `docker system prune`, which has nothing to
/// do yet: Berth has no build cache (the build issue).
public struct DiskUsageRoutes: Sendable {
    let engine: Engine

    public init(engine: Engine) { self.engine = engine }

    static let types: Set<String> = ["container", "image", "volume", "build-cache"]

    public func register(on router: inout Router) {
        let engine = self.engine
        router.get("/system/df") { request in
            let types = Set(request.query.all("type"))
            if let bad = types.first(where: { !Self.types.contains($0) }) {
                throw APIError.badRequest("unknown object type: \(bad)")
            }
            let usage = try await mapped { try await engine.diskUsage(types: types) }
            let now = Timestamp.nowNanoseconds()
            return try .json(DockerDiskUsage(
                layersSize: usage.layersSize,
                images: usage.images.map { image in
                    var row = DockerImageSummary(image.summary)
                    row.sharedSize = image.sharedSize
                    row.containers = image.containers
                    return row
                },
                containers: usage.containers.map { DockerContainerSummary($0, now: now) },
                volumes: usage.volumes.map { DockerVolume($0.volume, size: $0.size) }))
        }
        router.post("/build/prune") { _ in
            try .json(DockerBuildCachePrune())
        }
    }
}

/// Docker's `system.DiskUsage`.
struct DockerDiskUsage: Encodable, Sendable {
    var layersSize: Int64
    var images: [DockerImageSummary]
    var containers: [DockerContainerSummary]
    var volumes: [DockerVolume]
    var buildCache: [EmptyJSON] = []

    enum CodingKeys: String, CodingKey {
        case layersSize = "LayersSize", images = "Images", containers = "Containers", volumes = "Volumes"
        case buildCache = "BuildCache"
    }
}

struct DockerBuildCachePrune: Encodable, Sendable {
    var cachesDeleted: [String] = []
    var spaceReclaimed: Int64 = 0
    enum CodingKeys: String, CodingKey { case cachesDeleted = "CachesDeleted", spaceReclaimed = "SpaceReclaimed" }
}
