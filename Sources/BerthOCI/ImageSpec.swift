/// OCI image-spec 1.1 documents (descriptor.md, manifest.md, image-index.md, config.md,
/// image-layout.md) as plain `Codable` values, with Docker's schema2 media types beside them.
///
/// Keys follow the spec's JSON exactly (the container config's keys are capitalised there);
/// optional fields stay optional so a decoded document re-encodes without invented defaults.
/// Config blobs are hashed as stored: never re-encode one to compute an image ID.

public enum MediaType {
    // OCI image-spec media-types.md
    public static let descriptor = "application/vnd.oci.descriptor.v1+json"
    public static let layoutHeader = "application/vnd.oci.layout.header.v1+json"
    public static let imageIndex = "application/vnd.oci.image.index.v1+json"
    public static let imageManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let imageConfig = "application/vnd.oci.image.config.v1+json"
    public static let layer = "application/vnd.oci.image.layer.v1.tar"
    public static let layerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let layerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    public static let layerNondistributable = "application/vnd.oci.image.layer.nondistributable.v1.tar"
    public static let layerNondistributableGzip = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    public static let layerNondistributableZstd = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
    public static let empty = "application/vnd.oci.empty.v1+json"

    // Docker image manifest v2 schema 2
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    public static let dockerLayer = "application/vnd.docker.image.rootfs.diff.tar"
    public static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    /// Not in the Docker spec; containerd and BuildKit write it for zstd layers.
    public static let dockerLayerZstd = "application/vnd.docker.image.rootfs.diff.tar.zstd"
    public static let dockerForeignLayerGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

    public static func isIndex(_ type: String?) -> Bool { type == imageIndex || type == dockerManifestList }
    public static func isManifest(_ type: String?) -> Bool { type == imageManifest || type == dockerManifest }
    public static func isConfig(_ type: String?) -> Bool { type == imageConfig || type == dockerConfig }

    public static func isLayer(_ type: String?) -> Bool {
        guard let type else { return false }
        return layerCompression(type) != nil
    }

    /// The compression a layer media type declares, nil when it is not a layer type.
    public static func layerCompression(_ type: String) -> LayerCompression? {
        switch type {
        case layer, layerNondistributable, dockerLayer: return LayerCompression.none
        case layerGzip, layerNondistributableGzip, dockerLayerGzip, dockerForeignLayerGzip: return .gzip
        case layerZstd, layerNondistributableZstd, dockerLayerZstd: return .zstd
        default: return nil
        }
    }
}

public enum LayerCompression: String, Sendable, Codable {
    case none, gzip, zstd

    /// Sniffs the magic number at the start of a blob (RFC 1952 gzip, RFC 8878 zstd).
    public static func detect(_ prefix: some Collection<UInt8>) -> LayerCompression {
        let p = Array(prefix.prefix(4))
        if p.count >= 2 && p[0] == 0x1f && p[1] == 0x8b { return .gzip }
        if p == [0x28, 0xb5, 0x2f, 0xfd] { return .zstd }
        return LayerCompression.none
    }

    public var ociMediaType: String {
        switch self {
        case .none: MediaType.layer
        case .gzip: MediaType.layerGzip
        case .zstd: MediaType.layerZstd
        }
    }
}

/// Well-known annotation keys (annotations.md), and containerd's name annotation that
/// `docker save` writes into index.json.
public enum AnnotationKey {
    public static let refName = "org.opencontainers.image.ref.name"
    public static let created = "org.opencontainers.image.created"
    public static let containerdImageName = "io.containerd.image.name"
}

/// descriptor.md
public struct Descriptor: Codable, Sendable, Hashable {
    public var mediaType: String
    public var digest: Digest
    public var size: Int64
    public var urls: [String]?
    public var annotations: [String: String]?
    /// Base64 of the embedded content (descriptor.md "data"); kept as text.
    public var data: String?
    public var platform: Platform?
    public var artifactType: String?

    public init(mediaType: String, digest: Digest, size: Int64, urls: [String]? = nil,
                annotations: [String: String]? = nil, platform: Platform? = nil, artifactType: String? = nil) {
        self.mediaType = mediaType; self.digest = digest; self.size = size; self.urls = urls
        self.annotations = annotations; self.platform = platform; self.artifactType = artifactType
    }
}

/// image-index.md "platform"
public struct Platform: Codable, Sendable, Hashable {
    public var architecture: String
    public var os: String
    public var osVersion: String?
    public var osFeatures: [String]?
    public var variant: String?
    public var features: [String]?

    public init(architecture: String, os: String, osVersion: String? = nil, osFeatures: [String]? = nil,
                variant: String? = nil) {
        self.architecture = architecture; self.os = os; self.osVersion = osVersion
        self.osFeatures = osFeatures; self.variant = variant
    }

    enum CodingKeys: String, CodingKey {
        case architecture, os, variant, features
        case osVersion = "os.version"
        case osFeatures = "os.features"
    }

    /// The platform this binary was built for, in GOARCH/GOOS spelling as the spec asks.
    public static var current: Platform {
        #if arch(x86_64)
        Platform(architecture: "amd64", os: "linux")
        #elseif arch(arm64)
        Platform(architecture: "arm64", os: "linux", variant: "v8")
        #elseif arch(arm)
        Platform(architecture: "arm", os: "linux", variant: "v7")
        #elseif arch(s390x)
        Platform(architecture: "s390x", os: "linux")
        #elseif arch(powerpc64le)
        Platform(architecture: "ppc64le", os: "linux")
        #elseif arch(riscv64)
        Platform(architecture: "riscv64", os: "linux")
        #else
        Platform(architecture: "unknown", os: "linux")
        #endif
    }

    /// Whether an image for `self` runs here; arm64's variant is optional (v8 is the only one).
    public func matches(_ other: Platform) -> Bool {
        guard architecture == other.architecture && os == other.os else { return false }
        if architecture == "arm64" { return (variant ?? "v8") == (other.variant ?? "v8") }
        return variant == nil || other.variant == nil || variant == other.variant
    }
}

/// manifest.md
public struct ImageManifest: Codable, Sendable, Hashable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var artifactType: String?
    public var config: Descriptor
    public var layers: [Descriptor]
    public var subject: Descriptor?
    public var annotations: [String: String]?

    public init(schemaVersion: Int = 2, mediaType: String? = MediaType.imageManifest, artifactType: String? = nil,
                config: Descriptor, layers: [Descriptor], subject: Descriptor? = nil,
                annotations: [String: String]? = nil) {
        self.schemaVersion = schemaVersion; self.mediaType = mediaType; self.artifactType = artifactType
        self.config = config; self.layers = layers; self.subject = subject; self.annotations = annotations
    }
}

/// image-index.md (also the layout's index.json, image-layout.md)
public struct ImageIndex: Codable, Sendable, Hashable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var artifactType: String?
    public var manifests: [Descriptor]
    public var subject: Descriptor?
    public var annotations: [String: String]?

    public init(schemaVersion: Int = 2, mediaType: String? = MediaType.imageIndex, artifactType: String? = nil,
                manifests: [Descriptor], subject: Descriptor? = nil, annotations: [String: String]? = nil) {
        self.schemaVersion = schemaVersion; self.mediaType = mediaType; self.artifactType = artifactType
        self.manifests = manifests; self.subject = subject; self.annotations = annotations
    }
}

/// image-layout.md "oci-layout file"
public struct ImageLayoutHeader: Codable, Sendable, Hashable {
    public var imageLayoutVersion: String
    public init(imageLayoutVersion: String = "1.0.0") { self.imageLayoutVersion = imageLayoutVersion }
}

/// An empty JSON object, the value type of `ExposedPorts` and `Volumes` (config.md).
public struct EmptyObject: Codable, Sendable, Hashable {
    public init() {}
}

/// config.md
public struct ImageConfig: Codable, Sendable, Hashable {
    /// RFC 3339 date-time, kept as text so a decoded config re-encodes unchanged.
    public var created: String?
    public var author: String?
    public var architecture: String
    public var os: String
    public var osVersion: String?
    public var osFeatures: [String]?
    public var variant: String?
    public var config: ContainerConfig?
    public var rootfs: RootFS
    public var history: [History]?

    public init(created: String? = nil, author: String? = nil, architecture: String, os: String,
                variant: String? = nil, config: ContainerConfig? = nil, rootfs: RootFS = RootFS(),
                history: [History]? = nil) {
        self.created = created; self.author = author; self.architecture = architecture; self.os = os
        self.variant = variant; self.config = config; self.rootfs = rootfs; self.history = history
    }

    enum CodingKeys: String, CodingKey {
        case created, author, architecture, os, variant, config, rootfs, history
        case osVersion = "os.version"
        case osFeatures = "os.features"
    }

    public var platform: Platform {
        Platform(architecture: architecture, os: os, osVersion: osVersion, osFeatures: osFeatures, variant: variant)
    }

    public struct RootFS: Codable, Sendable, Hashable {
        public var type: String
        public var diffIDs: [Digest]
        public init(type: String = "layers", diffIDs: [Digest] = []) { self.type = type; self.diffIDs = diffIDs }
        enum CodingKeys: String, CodingKey {
            case type
            case diffIDs = "diff_ids"
        }
    }

    public struct History: Codable, Sendable, Hashable {
        public var created: String?
        public var createdBy: String?
        public var author: String?
        public var comment: String?
        public var emptyLayer: Bool?
        public init(created: String? = nil, createdBy: String? = nil, author: String? = nil,
                    comment: String? = nil, emptyLayer: Bool? = nil) {
            self.created = created; self.createdBy = createdBy; self.author = author
            self.comment = comment; self.emptyLayer = emptyLayer
        }
        enum CodingKeys: String, CodingKey {
            case created, author, comment
            case createdBy = "created_by"
            case emptyLayer = "empty_layer"
        }
    }
}

/// config.md "config": the execution parameters, with Docker's extensions (Healthcheck,
/// OnBuild, Shell) that `docker build` writes into the same object.
public struct ContainerConfig: Codable, Sendable, Hashable {
    public var user: String?
    public var exposedPorts: [String: EmptyObject]?
    public var env: [String]?
    public var entrypoint: [String]?
    public var cmd: [String]?
    public var volumes: [String: EmptyObject]?
    public var workingDir: String?
    public var labels: [String: String]?
    public var stopSignal: String?
    public var argsEscaped: Bool?
    public var healthcheck: Healthcheck?
    public var onBuild: [String]?
    public var shell: [String]?

    public init(user: String? = nil, exposedPorts: [String: EmptyObject]? = nil, env: [String]? = nil,
                entrypoint: [String]? = nil, cmd: [String]? = nil, volumes: [String: EmptyObject]? = nil,
                workingDir: String? = nil, labels: [String: String]? = nil, stopSignal: String? = nil) {
        self.user = user; self.exposedPorts = exposedPorts; self.env = env; self.entrypoint = entrypoint
        self.cmd = cmd; self.volumes = volumes; self.workingDir = workingDir; self.labels = labels
        self.stopSignal = stopSignal
    }

    enum CodingKeys: String, CodingKey {
        case user = "User"
        case exposedPorts = "ExposedPorts"
        case env = "Env"
        case entrypoint = "Entrypoint"
        case cmd = "Cmd"
        case volumes = "Volumes"
        case workingDir = "WorkingDir"
        case labels = "Labels"
        case stopSignal = "StopSignal"
        case argsEscaped = "ArgsEscaped"
        case healthcheck = "Healthcheck"
        case onBuild = "OnBuild"
        case shell = "Shell"
    }

    /// Docker's HEALTHCHECK (durations in nanoseconds, as Docker encodes them).
    public struct Healthcheck: Codable, Sendable, Hashable {
        public var test: [String]?
        public var interval: Int64?
        public var timeout: Int64?
        public var startPeriod: Int64?
        public var startInterval: Int64?
        public var retries: Int?
        public init(test: [String]? = nil, interval: Int64? = nil, timeout: Int64? = nil,
                    startPeriod: Int64? = nil, startInterval: Int64? = nil, retries: Int? = nil) {
            self.test = test; self.interval = interval; self.timeout = timeout
            self.startPeriod = startPeriod; self.startInterval = startInterval; self.retries = retries
        }
        enum CodingKeys: String, CodingKey {
            case test = "Test"
            case interval = "Interval"
            case timeout = "Timeout"
            case startPeriod = "StartPeriod"
            case startInterval = "StartInterval"
            case retries = "Retries"
        }
    }
}

/// One entry of a docker-archive's `manifest.json` (the `docker save` format).
public struct DockerArchiveManifestEntry: Codable, Sendable, Hashable {
    public var config: String
    public var repoTags: [String]?
    public var layers: [String]
    public init(config: String, repoTags: [String]?, layers: [String]) {
        self.config = config; self.repoTags = repoTags; self.layers = layers
    }
    enum CodingKeys: String, CodingKey {
        case config = "Config"
        case repoTags = "RepoTags"
        case layers = "Layers"
    }
}
