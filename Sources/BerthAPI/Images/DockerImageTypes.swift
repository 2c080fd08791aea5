import BerthEngine

/// A row of `GET /images/json`.
struct DockerImageSummary: Encodable, Sendable {
    var id: String
    var parentID = ""
    var repoTags: [String]
    var repoDigests: [String]
    var created: Int64
    var size: Int64
    var sharedSize: Int64 = -1
    var labels: [String: String]
    var containers: Int = -1
    enum CodingKeys: String, CodingKey {
        case id = "Id", parentID = "ParentId", repoTags = "RepoTags", repoDigests = "RepoDigests", created = "Created"
        case size = "Size", sharedSize = "SharedSize", labels = "Labels", containers = "Containers"
    }
}

/// `GET /images/{name}/json`. Generic over the config so this module needs no image types.
struct DockerImageInspect<Config: Encodable & Sendable>: Encodable, Sendable {
    struct GraphDriver: Encodable, Sendable {
        var name = "overlay2"
        var data: [String: String] = [:]
        enum CodingKeys: String, CodingKey { case name = "Name", data = "Data" }
    }
    struct RootFS: Encodable, Sendable {
        var type = "layers"
        var layers: [String]
        enum CodingKeys: String, CodingKey { case type = "Type", layers = "Layers" }
    }
    var id: String
    var repoTags: [String]
    var repoDigests: [String]
    var parent = ""
    var comment = ""
    var created: String
    var dockerVersion = ""
    var author: String
    var config: Config?
    var architecture: String
    var os: String
    var size: Int64
    var graphDriver = GraphDriver()
    var rootFS: RootFS
    enum CodingKeys: String, CodingKey {
        case id = "Id", repoTags = "RepoTags", repoDigests = "RepoDigests", parent = "Parent", comment = "Comment"
        case created = "Created", dockerVersion = "DockerVersion", author = "Author", config = "Config"
        case architecture = "Architecture", os = "Os", size = "Size", graphDriver = "GraphDriver", rootFS = "RootFS"
    }
}
