import BerthEngine

/// Docker's `Volume` (`GET /volumes/{name}`, a row of `GET /volumes`, the answer to create).
struct DockerVolume: Encodable, Sendable {
    struct UsageData: Encodable, Sendable {
        var size: Int64
        var refCount: Int
        enum CodingKeys: String, CodingKey { case size = "Size", refCount = "RefCount" }
    }

    var name: String
    var driver: String
    var mountpoint: String
    var createdAt: String
    /// dockerd sends null for no labels and no options.
    var labels: [String: String]?
    var options: [String: String]?
    var scope = "local"
    var usageData: UsageData?

    enum CodingKeys: String, CodingKey {
        case name = "Name", driver = "Driver", mountpoint = "Mountpoint", createdAt = "CreatedAt", labels = "Labels"
        case options = "Options", scope = "Scope", usageData = "UsageData"
    }

    init(_ v: VolumeDetails, size: Int64? = nil) {
        name = v.name
        driver = v.driver
        mountpoint = v.mountpoint
        createdAt = v.createdAt
        labels = v.labels.isEmpty ? nil : v.labels
        options = v.options.isEmpty ? nil : v.options
        usageData = size.map { UsageData(size: $0, refCount: v.users.count) }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(driver, forKey: .driver)
        try c.encode(mountpoint, forKey: .mountpoint)
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(labels, forKey: .labels)
        try c.encode(options, forKey: .options)
        try c.encode(scope, forKey: .scope)
        try c.encodeIfPresent(usageData, forKey: .usageData)
    }
}

/// `POST /volumes/create`'s body (`VolumeCreateOptions`).
struct DockerVolumeCreateRequest: Decodable, Sendable {
    var name: String?
    var driver: String?
    var driverOpts: [String: String]?
    var labels: [String: String]?
    enum CodingKeys: String, CodingKey {
        case name = "Name", driver = "Driver", driverOpts = "DriverOpts", labels = "Labels"
    }
}

struct DockerVolumeList: Encodable, Sendable {
    var volumes: [DockerVolume]
    var warnings: [String] = []
    enum CodingKeys: String, CodingKey { case volumes = "Volumes", warnings = "Warnings" }
}

struct DockerVolumePruneResponse: Encodable, Sendable {
    var volumesDeleted: [String]
    var spaceReclaimed: Int64
    enum CodingKeys: String, CodingKey { case volumesDeleted = "VolumesDeleted", spaceReclaimed = "SpaceReclaimed" }
}
