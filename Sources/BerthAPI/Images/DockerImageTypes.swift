import BerthEngine

/// A row of `GET /images/json`.
struct DockerImageSummary: Encodable, Sendable {
    var id: String
    var parentID = ""
    var repoTags: [String]
    var repoDigests: [String]
    var created: Int64
    var size: Int64
    var sharedSize: Int64
    var labels: [String: String]
    /// dockerd computes it only for `system df`: -1 means "not calculated".
    var containers: Int = -1
    enum CodingKeys: String, CodingKey {
        case id = "Id", parentID = "ParentId", repoTags = "RepoTags", repoDigests = "RepoDigests", created = "Created"
        case size = "Size", sharedSize = "SharedSize", labels = "Labels", containers = "Containers"
    }

    init(_ s: ImageSummary) {
        id = s.id; repoTags = s.repoTags; repoDigests = s.repoDigests; created = s.created; size = s.size
        sharedSize = s.sharedSize; labels = s.labels
    }
}

/// `GET /images/{name}/json`. Generic over the config so this module needs no image types.
struct DockerImageInspect<Config: Encodable & Sendable>: Encodable, Sendable {
    struct GraphDriver: Encodable, Sendable {
        var name = "overlay2"
        var data: [String: String]
        enum CodingKeys: String, CodingKey { case name = "Name", data = "Data" }
    }
    struct RootFS: Encodable, Sendable {
        var type = "layers"
        var layers: [String]
        enum CodingKeys: String, CodingKey { case type = "Type", layers = "Layers" }
    }
    struct Metadata: Encodable, Sendable {
        var lastTagTime: String
        enum CodingKeys: String, CodingKey { case lastTagTime = "LastTagTime" }
    }
    var id: String
    var repoTags: [String]
    var repoDigests: [String]
    var parent = ""
    var comment: String
    var created: String
    /// Removed in API 1.45; older clients still get it (empty: no image here comes from a commit).
    var container: String?
    var dockerVersion: String
    var author: String
    var config: Config?
    var architecture: String
    var variant: String?
    var os: String
    var osVersion: String?
    var size: Int64
    /// Removed in API 1.44; the same as `Size` before.
    var virtualSize: Int64?
    var graphDriver: GraphDriver
    var rootFS: RootFS
    var metadata: Metadata
    enum CodingKeys: String, CodingKey {
        case id = "Id", repoTags = "RepoTags", repoDigests = "RepoDigests", parent = "Parent", comment = "Comment"
        case created = "Created", container = "Container", dockerVersion = "DockerVersion", author = "Author"
        case config = "Config", architecture = "Architecture", variant = "Variant", os = "Os", osVersion = "OsVersion"
        case size = "Size", virtualSize = "VirtualSize", graphDriver = "GraphDriver", rootFS = "RootFS", metadata = "Metadata"
    }
}

extension DockerImageInspect {
    /// `config` is `d.config`, passed apart so its type is inferred rather than named here.
    init(_ d: ImageDetails, config: Config?, apiVersion: APIVersion) {
        id = d.id; repoTags = d.repoTags; repoDigests = d.repoDigests; comment = d.comment; created = d.created
        dockerVersion = d.dockerVersion; author = d.author; self.config = config
        architecture = d.architecture; variant = d.variant; os = d.os; osVersion = d.osVersion; size = d.size
        graphDriver = GraphDriver(data: d.graphDriverData); rootFS = RootFS(layers: d.layers)
        metadata = Metadata(lastTagTime: d.lastTagTime ?? "0001-01-01T00:00:00Z")
        if apiVersion < "1.45" { container = "" }
        if apiVersion < "1.44" { virtualSize = d.size }
    }
}

/// One line of `GET /images/{name}/history`.
struct DockerImageHistoryItem: Encodable, Sendable {
    var id: String
    var created: Int64
    var createdBy: String
    /// null below the newest line, as dockerd.
    var tags: [String]?
    var size: Int64
    var comment: String
    enum CodingKeys: String, CodingKey {
        case id = "Id", created = "Created", createdBy = "CreatedBy", tags = "Tags", size = "Size", comment = "Comment"
    }

    init(_ h: ImageHistoryItem) {
        id = h.id; created = h.created; createdBy = h.createdBy; tags = h.id == "<missing>" ? nil : h.tags
        size = h.size; comment = h.comment
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(created, forKey: .created)
        try c.encode(createdBy, forKey: .createdBy)
        try c.encode(tags, forKey: .tags)
        try c.encode(size, forKey: .size)
        try c.encode(comment, forKey: .comment)
    }
}

/// One entry of `DELETE /images/{name}` and of prune's `ImagesDeleted`: `{"Untagged": …}` or `{"Deleted": …}`.
struct DockerImageDeleteItem: Encodable, Sendable {
    var item: Engine.ImageDeleteItem
    enum CodingKeys: String, CodingKey { case untagged = "Untagged", deleted = "Deleted" }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch item {
        case .untagged(let name): try c.encode(name, forKey: .untagged)
        case .deleted(let id): try c.encode(id, forKey: .deleted)
        }
    }
}

/// `POST /images/prune`.
struct DockerImagePruneResponse: Encodable, Sendable {
    var imagesDeleted: [DockerImageDeleteItem]
    var spaceReclaimed: Int64
    enum CodingKeys: String, CodingKey { case imagesDeleted = "ImagesDeleted", spaceReclaimed = "SpaceReclaimed" }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        // dockerd sends null, not [], when nothing went.
        if imagesDeleted.isEmpty { try c.encodeNil(forKey: .imagesDeleted) } else { try c.encode(imagesDeleted, forKey: .imagesDeleted) }
        try c.encode(spaceReclaimed, forKey: .spaceReclaimed)
    }
}
