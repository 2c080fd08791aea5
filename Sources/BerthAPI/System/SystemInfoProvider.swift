/// What the system routes (`/version`, `/info`) need from the engine, as plain values.
/// The routes turn these into Docker's JSON; the engine knows nothing of that JSON.
public protocol SystemInfoProvider: Sendable {
    func version() async throws -> EngineVersion
    func info() async throws -> EngineInfo
}

/// The engine's build and host, for `GET /version`.
public struct EngineVersion: Sendable, Equatable {
    public var version: String
    public var gitCommit: String
    /// RFC 3339; the docker CLI reformats it.
    public var buildTime: String
    /// The compiler, shown where dockerd shows its Go version (`swift6.1`).
    public var toolchain: String
    public var os: String
    /// Go's architecture names, which clients expect here: `amd64`, `arm64`.
    public var arch: String
    public var kernelVersion: String
    public var experimental: Bool

    public init(
        version: String = BerthAPI.engineVersion, gitCommit: String = "unknown", buildTime: String = "",
        toolchain: String = "swift", os: String = "linux", arch: String = HostFacts.goArchitecture(HostFacts.machine()),
        kernelVersion: String = HostFacts.kernelRelease(), experimental: Bool = false
    ) {
        self.version = version
        self.gitCommit = gitCommit
        self.buildTime = buildTime
        self.toolchain = toolchain
        self.os = os
        self.arch = arch
        self.kernelVersion = kernelVersion
        self.experimental = experimental
    }
}

/// The engine's state and host, for `GET /info`.
public struct EngineInfo: Sendable {
    public struct ContainerCounts: Sendable, Equatable {
        public var running = 0, paused = 0, stopped = 0
        public var total: Int { running + paused + stopped }
        public init(running: Int = 0, paused: Int = 0, stopped: Int = 0) {
            self.running = running
            self.paused = paused
            self.stopped = stopped
        }
    }

    /// Which resource limits the host's cgroups can enforce.
    public struct ResourceSupport: Sendable, Equatable {
        public var memoryLimit = false, swapLimit = false, kernelMemoryTCP = false
        public var cpuCfsPeriod = false, cpuCfsQuota = false, cpuShares = false, cpuSet = false
        public var pidsLimit = false, oomKillDisable = false
        public init() {}
    }

    public struct Runtime: Sendable, Equatable {
        public var name: String
        public var path: String
        public init(name: String, path: String) {
            self.name = name
            self.path = path
        }
    }

    public var id: String
    public var name: String
    public var containers = ContainerCounts()
    public var images = 0
    public var storageDriver = "overlay2"
    public var driverStatus: [(String, String)] = []
    public var dataRoot: String
    public var host: HostFacts
    public var resources = ResourceSupport()
    public var ipv4Forwarding = false
    public var debug = false
    public var loggingDriver = "json-file"
    public var runtimes: [Runtime] = []
    public var defaultRuntime = ""
    public var securityOptions: [String] = []
    public var serverVersion = BerthAPI.engineVersion
    public var labels: [String] = []
    public var httpProxy = "", httpsProxy = "", noProxy = ""
    public var volumePlugins = ["local"]
    public var networkPlugins = ["bridge", "host", "null"]
    public var logPlugins = ["json-file", "local"]
    public var insecureRegistries = ["::1/128", "127.0.0.0/8"]
    public var registryMirrors: [String] = []
    public var fileDescriptors = 0
    public var threads = 0
    public var eventListeners = 0
    /// RFC 3339 with nanoseconds, as Go's `time.Now()` marshals.
    public var systemTime = ""
    public var liveRestore = false
    public var warnings: [String] = []

    public init(id: String, name: String, dataRoot: String, host: HostFacts) {
        self.id = id
        self.name = name
        self.dataRoot = dataRoot
        self.host = host
    }
}
