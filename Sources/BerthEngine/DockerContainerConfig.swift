import BerthOCI

/// Docker Engine API 1.47 `ContainerCreateRequest`: the `Config` fields at the top level, plus
/// `HostConfig` and `NetworkingConfig`. Every field is optional because the docker CLI sends
/// nulls freely; unknown keys are ignored on decode.
public struct DockerContainerCreateRequest: Codable, Sendable, Equatable {
    public var config: DockerContainerConfig
    public var hostConfig: DockerHostConfig?
    public var networkingConfig: DockerNetworkingConfig?

    public init(config: DockerContainerConfig, hostConfig: DockerHostConfig? = nil,
                networkingConfig: DockerNetworkingConfig? = nil) {
        self.config = config; self.hostConfig = hostConfig; self.networkingConfig = networkingConfig
    }

    enum CodingKeys: String, CodingKey {
        case hostConfig = "HostConfig"
        case networkingConfig = "NetworkingConfig"
    }

    public init(from decoder: any Decoder) throws {
        config = try DockerContainerConfig(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        hostConfig = try c.decodeIfPresent(DockerHostConfig.self, forKey: .hostConfig)
        networkingConfig = try c.decodeIfPresent(DockerNetworkingConfig.self, forKey: .networkingConfig)
    }

    public func encode(to encoder: any Encoder) throws {
        try config.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(hostConfig, forKey: .hostConfig)
        try c.encodeIfPresent(networkingConfig, forKey: .networkingConfig)
    }
}

/// Docker's container `Config` (API 1.47).
public struct DockerContainerConfig: Codable, Sendable, Equatable {
    public var hostname: String?
    public var domainname: String?
    public var user: String?
    public var attachStdin: Bool?
    public var attachStdout: Bool?
    public var attachStderr: Bool?
    public var exposedPorts: [String: EmptyObject]?
    public var tty: Bool?
    public var openStdin: Bool?
    public var stdinOnce: Bool?
    public var env: [String]?
    public var cmd: [String]?
    public var healthcheck: ContainerConfig.Healthcheck?
    public var argsEscaped: Bool?
    public var image: String?
    public var volumes: [String: EmptyObject]?
    public var workingDir: String?
    public var entrypoint: [String]?
    public var networkDisabled: Bool?
    public var macAddress: String?
    public var onBuild: [String]?
    public var labels: [String: String]?
    public var stopSignal: String?
    public var stopTimeout: Int?
    public var shell: [String]?

    public init(hostname: String? = nil, domainname: String? = nil, user: String? = nil, tty: Bool? = nil,
                env: [String]? = nil, cmd: [String]? = nil, image: String? = nil, workingDir: String? = nil,
                entrypoint: [String]? = nil, labels: [String: String]? = nil) {
        self.hostname = hostname; self.domainname = domainname; self.user = user; self.tty = tty
        self.env = env; self.cmd = cmd; self.image = image; self.workingDir = workingDir
        self.entrypoint = entrypoint; self.labels = labels
    }

    enum CodingKeys: String, CodingKey {
        case hostname = "Hostname", domainname = "Domainname", user = "User"
        case attachStdin = "AttachStdin", attachStdout = "AttachStdout", attachStderr = "AttachStderr"
        case exposedPorts = "ExposedPorts", tty = "Tty", openStdin = "OpenStdin", stdinOnce = "StdinOnce"
        case env = "Env", cmd = "Cmd", healthcheck = "Healthcheck", argsEscaped = "ArgsEscaped"
        case image = "Image", volumes = "Volumes", workingDir = "WorkingDir", entrypoint = "Entrypoint"
        case networkDisabled = "NetworkDisabled", macAddress = "MacAddress", onBuild = "OnBuild"
        case labels = "Labels", stopSignal = "StopSignal", stopTimeout = "StopTimeout", shell = "Shell"
    }
}

/// Docker's `HostConfig` (API 1.47), the Linux-relevant fields.
public struct DockerHostConfig: Codable, Sendable, Equatable {
    public var binds: [String]?
    public var containerIDFile: String?
    public var logConfig: LogConfig?
    public var networkMode: String?
    public var portBindings: [String: [PortBinding]?]?
    public var restartPolicy: RestartPolicy?
    public var autoRemove: Bool?
    public var volumeDriver: String?
    public var volumesFrom: [String]?
    public var mounts: [MountPoint]?
    public var capAdd: [String]?
    public var capDrop: [String]?
    public var cgroupnsMode: String?
    public var dns: [String]?
    public var dnsOptions: [String]?
    public var dnsSearch: [String]?
    public var extraHosts: [String]?
    public var groupAdd: [String]?
    public var ipcMode: String?
    public var cgroup: String?
    public var links: [String]?
    public var oomScoreAdj: Int?
    public var pidMode: String?
    public var privileged: Bool?
    public var publishAllPorts: Bool?
    public var readonlyRootfs: Bool?
    public var securityOpt: [String]?
    public var storageOpt: [String: String]?
    public var tmpfs: [String: String]?
    public var utsMode: String?
    public var usernsMode: String?
    public var shmSize: Int64?
    public var sysctls: [String: String]?
    public var runtime: String?
    public var isolation: String?
    public var cpuShares: Int64?
    public var memory: Int64?
    public var nanoCpus: Int64?
    public var cgroupParent: String?
    public var blkioWeight: UInt16?
    public var cpuPeriod: Int64?
    public var cpuQuota: Int64?
    public var cpuRealtimePeriod: Int64?
    public var cpuRealtimeRuntime: Int64?
    public var cpusetCpus: String?
    public var cpusetMems: String?
    public var devices: [DeviceMapping]?
    public var deviceCgroupRules: [String]?
    public var memoryReservation: Int64?
    public var memorySwap: Int64?
    public var memorySwappiness: Int64?
    public var oomKillDisable: Bool?
    public var pidsLimit: Int64?
    public var ulimits: [Ulimit]?
    public var `init`: Bool?
    public var maskedPaths: [String]?
    public var readonlyPaths: [String]?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case binds = "Binds", containerIDFile = "ContainerIDFile", logConfig = "LogConfig"
        case networkMode = "NetworkMode", portBindings = "PortBindings", restartPolicy = "RestartPolicy"
        case autoRemove = "AutoRemove", volumeDriver = "VolumeDriver", volumesFrom = "VolumesFrom"
        case mounts = "Mounts", capAdd = "CapAdd", capDrop = "CapDrop", cgroupnsMode = "CgroupnsMode"
        case dns = "Dns", dnsOptions = "DnsOptions", dnsSearch = "DnsSearch", extraHosts = "ExtraHosts"
        case groupAdd = "GroupAdd", ipcMode = "IpcMode", cgroup = "Cgroup", links = "Links"
        case oomScoreAdj = "OomScoreAdj", pidMode = "PidMode", privileged = "Privileged"
        case publishAllPorts = "PublishAllPorts", readonlyRootfs = "ReadonlyRootfs"
        case securityOpt = "SecurityOpt", storageOpt = "StorageOpt", tmpfs = "Tmpfs", utsMode = "UTSMode"
        case usernsMode = "UsernsMode", shmSize = "ShmSize", sysctls = "Sysctls", runtime = "Runtime"
        case isolation = "Isolation", cpuShares = "CpuShares", memory = "Memory", nanoCpus = "NanoCpus"
        case cgroupParent = "CgroupParent", blkioWeight = "BlkioWeight", cpuPeriod = "CpuPeriod"
        case cpuQuota = "CpuQuota", cpuRealtimePeriod = "CpuRealtimePeriod"
        case cpuRealtimeRuntime = "CpuRealtimeRuntime", cpusetCpus = "CpusetCpus", cpusetMems = "CpusetMems"
        case devices = "Devices", deviceCgroupRules = "DeviceCgroupRules"
        case memoryReservation = "MemoryReservation", memorySwap = "MemorySwap"
        case memorySwappiness = "MemorySwappiness", oomKillDisable = "OomKillDisable"
        case pidsLimit = "PidsLimit", ulimits = "Ulimits", `init` = "Init"
        case maskedPaths = "MaskedPaths", readonlyPaths = "ReadonlyPaths"
    }

    public struct LogConfig: Codable, Sendable, Equatable {
        public var type: String?
        public var config: [String: String]?
        public init(type: String? = nil, config: [String: String]? = nil) { self.type = type; self.config = config }
        enum CodingKeys: String, CodingKey { case type = "Type", config = "Config" }
    }

    public struct PortBinding: Codable, Sendable, Equatable {
        public var hostIp: String?
        public var hostPort: String?
        public init(hostIp: String? = nil, hostPort: String? = nil) { self.hostIp = hostIp; self.hostPort = hostPort }
        enum CodingKeys: String, CodingKey { case hostIp = "HostIp", hostPort = "HostPort" }
    }

    public struct RestartPolicy: Codable, Sendable, Equatable {
        public var name: String?
        public var maximumRetryCount: Int?
        public init(name: String? = nil, maximumRetryCount: Int? = nil) {
            self.name = name; self.maximumRetryCount = maximumRetryCount
        }
        enum CodingKeys: String, CodingKey { case name = "Name", maximumRetryCount = "MaximumRetryCount" }
    }

    /// One entry of `HostConfig.Mounts` (`docker run --mount`).
    public struct MountPoint: Codable, Sendable, Equatable {
        public var target: String?
        public var source: String?
        public var type: String?
        public var readOnly: Bool?
        public var consistency: String?
        public var bindOptions: BindOptions?
        public var volumeOptions: VolumeOptions?
        public var tmpfsOptions: TmpfsOptions?

        public init(target: String? = nil, source: String? = nil, type: String? = nil, readOnly: Bool? = nil,
                    bindOptions: BindOptions? = nil, volumeOptions: VolumeOptions? = nil,
                    tmpfsOptions: TmpfsOptions? = nil) {
            self.target = target; self.source = source; self.type = type; self.readOnly = readOnly
            self.bindOptions = bindOptions; self.volumeOptions = volumeOptions; self.tmpfsOptions = tmpfsOptions
        }

        enum CodingKeys: String, CodingKey {
            case target = "Target", source = "Source", type = "Type", readOnly = "ReadOnly"
            case consistency = "Consistency", bindOptions = "BindOptions", volumeOptions = "VolumeOptions"
            case tmpfsOptions = "TmpfsOptions"
        }

        public struct BindOptions: Codable, Sendable, Equatable {
            public var propagation: String?
            public var nonRecursive: Bool?
            public init(propagation: String? = nil, nonRecursive: Bool? = nil) {
                self.propagation = propagation; self.nonRecursive = nonRecursive
            }
            enum CodingKeys: String, CodingKey { case propagation = "Propagation", nonRecursive = "NonRecursive" }
        }

        public struct VolumeOptions: Codable, Sendable, Equatable {
            public var noCopy: Bool?
            public var labels: [String: String]?
            public var driverConfig: DriverConfig?
            public var subpath: String?
            public init(noCopy: Bool? = nil, labels: [String: String]? = nil, subpath: String? = nil) {
                self.noCopy = noCopy; self.labels = labels; self.subpath = subpath
            }
            enum CodingKeys: String, CodingKey {
                case noCopy = "NoCopy", labels = "Labels", driverConfig = "DriverConfig", subpath = "Subpath"
            }
            public struct DriverConfig: Codable, Sendable, Equatable {
                public var name: String?
                public var options: [String: String]?
                enum CodingKeys: String, CodingKey { case name = "Name", options = "Options" }
            }
        }

        public struct TmpfsOptions: Codable, Sendable, Equatable {
            public var sizeBytes: Int64?
            /// File mode as Docker encodes Go's os.FileMode: a decimal number (1777 octal is 1023).
            public var mode: UInt32?
            public init(sizeBytes: Int64? = nil, mode: UInt32? = nil) { self.sizeBytes = sizeBytes; self.mode = mode }
            enum CodingKeys: String, CodingKey { case sizeBytes = "SizeBytes", mode = "Mode" }
        }
    }

    public struct DeviceMapping: Codable, Sendable, Equatable {
        public var pathOnHost: String?
        public var pathInContainer: String?
        public var cgroupPermissions: String?
        public init(pathOnHost: String? = nil, pathInContainer: String? = nil, cgroupPermissions: String? = nil) {
            self.pathOnHost = pathOnHost; self.pathInContainer = pathInContainer
            self.cgroupPermissions = cgroupPermissions
        }
        enum CodingKeys: String, CodingKey {
            case pathOnHost = "PathOnHost", pathInContainer = "PathInContainer"
            case cgroupPermissions = "CgroupPermissions"
        }
    }

    public struct Ulimit: Codable, Sendable, Equatable {
        public var name: String
        public var soft: Int64
        public var hard: Int64
        public init(name: String, soft: Int64, hard: Int64) { self.name = name; self.soft = soft; self.hard = hard }
        enum CodingKeys: String, CodingKey { case name = "Name", soft = "Soft", hard = "Hard" }
    }
}

/// Docker's `NetworkingConfig`: the endpoint settings per network name.
public struct DockerNetworkingConfig: Codable, Sendable, Equatable {
    public var endpointsConfig: [String: EndpointSettings]?
    public init(endpointsConfig: [String: EndpointSettings]? = nil) { self.endpointsConfig = endpointsConfig }
    enum CodingKeys: String, CodingKey { case endpointsConfig = "EndpointsConfig" }

    public struct EndpointSettings: Codable, Sendable, Equatable {
        public var ipamConfig: IPAMConfig?
        public var links: [String]?
        public var aliases: [String]?
        public var macAddress: String?
        public var driverOpts: [String: String]?
        public var networkID: String?
        public var endpointID: String?
        public var gateway: String?
        public var ipAddress: String?
        public var dnsNames: [String]?
        public init() {}
        enum CodingKeys: String, CodingKey {
            case ipamConfig = "IPAMConfig", links = "Links", aliases = "Aliases", macAddress = "MacAddress"
            case driverOpts = "DriverOpts", networkID = "NetworkID", endpointID = "EndpointID"
            case gateway = "Gateway", ipAddress = "IPAddress", dnsNames = "DNSNames"
        }
    }

    public struct IPAMConfig: Codable, Sendable, Equatable {
        public var ipv4Address: String?
        public var ipv6Address: String?
        public var linkLocalIPs: [String]?
        enum CodingKeys: String, CodingKey {
            case ipv4Address = "IPv4Address", ipv6Address = "IPv6Address", linkLocalIPs = "LinkLocalIPs"
        }
    }
}

extension DockerContainerConfig {
    /// The configuration as dockerd stores it (`mergeAndVerifyConfig`): what the request left
    /// out comes from the image, so inspect shows what the container really runs with.
    public func merged(with image: ContainerConfig?) -> DockerContainerConfig {
        guard let image else { return self }
        var c = self
        if (c.user ?? "").isEmpty { c.user = image.user }
        if let ports = image.exposedPorts { c.exposedPorts = ports.merging(c.exposedPorts ?? [:]) { _, mine in mine } }
        let keys = Set((c.env ?? []).map { $0.split(separator: "=", maxSplits: 1).first.map(String.init) ?? $0 })
        let inherited = (image.env ?? []).filter { !keys.contains($0.split(separator: "=", maxSplits: 1).first.map(String.init) ?? $0) }
        if !inherited.isEmpty { c.env = (c.env ?? []) + inherited }
        if let labels = image.labels { c.labels = labels.merging(c.labels ?? [:]) { _, mine in mine } }
        if (c.entrypoint ?? []).isEmpty {
            if (c.cmd ?? []).isEmpty { c.cmd = image.cmd }
            if c.entrypoint == nil { c.entrypoint = image.entrypoint }
        }
        if c.healthcheck == nil { c.healthcheck = image.healthcheck }
        if (c.workingDir ?? "").isEmpty { c.workingDir = image.workingDir }
        if let volumes = image.volumes { c.volumes = volumes.merging(c.volumes ?? [:]) { _, mine in mine } }
        if (c.stopSignal ?? "").isEmpty { c.stopSignal = image.stopSignal }
        if c.onBuild == nil { c.onBuild = image.onBuild }
        if c.shell == nil { c.shell = image.shell }
        return c
    }
}
