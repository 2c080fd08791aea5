/// The JSON of `GET /version` (Docker's `types.Version`, API 1.47).
struct DockerVersion: Encodable, Sendable {
    struct Platform: Encodable, Sendable {
        var name: String
        enum CodingKeys: String, CodingKey { case name = "Name" }
    }

    struct Component: Encodable, Sendable {
        var name: String
        var version: String
        var details: [String: String]?
        enum CodingKeys: String, CodingKey {
            case name = "Name", version = "Version", details = "Details"
        }
    }

    var platform: Platform
    var components: [Component]
    var version: String
    var apiVersion: String
    var minAPIVersion: String
    var gitCommit: String
    var goVersion: String
    var os: String
    var arch: String
    var kernelVersion: String
    /// `omitempty` in Go: present only when true.
    var experimental: Bool?
    var buildTime: String

    enum CodingKeys: String, CodingKey {
        case platform = "Platform", components = "Components", version = "Version", apiVersion = "ApiVersion"
        case minAPIVersion = "MinAPIVersion", gitCommit = "GitCommit", goVersion = "GoVersion", os = "Os"
        case arch = "Arch", kernelVersion = "KernelVersion", experimental = "Experimental", buildTime = "BuildTime"
    }

    init(_ v: EngineVersion) {
        platform = Platform(name: "Berth")
        components = [Component(name: "Engine", version: v.version, details: [
            "ApiVersion": BerthAPI.maximumVersion.text,
            "Arch": v.arch,
            "BuildTime": v.buildTime,
            "Experimental": v.experimental ? "true" : "false",
            "GitCommit": v.gitCommit,
            "GoVersion": v.toolchain,
            "KernelVersion": v.kernelVersion,
            "MinAPIVersion": BerthAPI.minimumVersion.text,
            "Os": v.os,
        ])]
        version = v.version
        apiVersion = BerthAPI.maximumVersion.text
        minAPIVersion = BerthAPI.minimumVersion.text
        gitCommit = v.gitCommit
        goVersion = v.toolchain
        os = v.os
        arch = v.arch
        kernelVersion = v.kernelVersion
        experimental = v.experimental ? true : nil
        buildTime = v.buildTime
    }
}

/// The JSON of `GET /info` (Docker's `system.Info`, API 1.47). The docker CLI 28 renders
/// every field of it, so the shape follows dockerd's even where Berth has nothing to say.
struct DockerInfo: Encodable, Sendable {
    struct Plugins: Encodable, Sendable {
        var volume: [String]
        var network: [String]
        var authorization: [String]?
        var log: [String]
        enum CodingKeys: String, CodingKey {
            case volume = "Volume", network = "Network", authorization = "Authorization", log = "Log"
        }
    }

    struct IndexInfo: Encodable, Sendable {
        var name: String
        var mirrors: [String]
        var secure: Bool
        var official: Bool
        enum CodingKeys: String, CodingKey { case name = "Name", mirrors = "Mirrors", secure = "Secure", official = "Official" }
    }

    struct RegistryConfig: Encodable, Sendable {
        var insecureRegistryCIDRs: [String]
        var indexConfigs: [String: IndexInfo]
        var mirrors: [String]?
        enum CodingKeys: String, CodingKey {
            case insecureRegistryCIDRs = "InsecureRegistryCIDRs", indexConfigs = "IndexConfigs", mirrors = "Mirrors"
        }
    }

    struct Runtime: Encodable, Sendable {
        var path: String
    }

    struct SwarmInfo: Encodable, Sendable {
        var nodeID = ""
        var nodeAddr = ""
        var localNodeState = "inactive"
        var controlAvailable = false
        var error = ""
        var remoteManagers: [String]? = nil
        enum CodingKeys: String, CodingKey {
            case nodeID = "NodeID", nodeAddr = "NodeAddr", localNodeState = "LocalNodeState"
            case controlAvailable = "ControlAvailable", error = "Error", remoteManagers = "RemoteManagers"
        }
    }

    struct Commit: Encodable, Sendable {
        var id: String
        enum CodingKeys: String, CodingKey { case id = "ID" }
    }

    var id: String
    var containers: Int
    var containersRunning: Int
    var containersPaused: Int
    var containersStopped: Int
    var images: Int
    var driver: String
    var driverStatus: [[String]]
    var plugins: Plugins
    var memoryLimit: Bool
    var swapLimit: Bool
    var kernelMemoryTCP: Bool?
    var cpuCfsPeriod: Bool
    var cpuCfsQuota: Bool
    var cpuShares: Bool
    var cpuSet: Bool
    var pidsLimit: Bool
    var ipv4Forwarding: Bool
    var debug: Bool
    var nFd: Int
    var oomKillDisable: Bool
    var nGoroutines: Int
    var systemTime: String
    var loggingDriver: String
    var cgroupDriver: String
    var cgroupVersion: String
    var nEventsListener: Int
    var kernelVersion: String
    var operatingSystem: String
    var osVersion: String
    var osType: String
    var architecture: String
    var indexServerAddress: String
    var registryConfig: RegistryConfig
    var ncpu: Int
    var memTotal: Int64
    var dockerRootDir: String
    var httpProxy: String
    var httpsProxy: String
    var noProxy: String
    var name: String
    var labels: [String]
    var experimentalBuild: Bool
    var serverVersion: String
    var runtimes: [String: Runtime]
    var defaultRuntime: String
    var swarm: SwarmInfo
    var liveRestoreEnabled: Bool
    var isolation: String
    var initBinary: String
    var containerdCommit: Commit
    var runcCommit: Commit
    var initCommit: Commit
    var securityOptions: [String]
    var cdiSpecDirs: [String]
    var warnings: [String]

    enum CodingKeys: String, CodingKey {
        case id = "ID", containers = "Containers", containersRunning = "ContainersRunning"
        case containersPaused = "ContainersPaused", containersStopped = "ContainersStopped", images = "Images"
        case driver = "Driver", driverStatus = "DriverStatus", plugins = "Plugins", memoryLimit = "MemoryLimit"
        case swapLimit = "SwapLimit", kernelMemoryTCP = "KernelMemoryTCP", cpuCfsPeriod = "CpuCfsPeriod"
        case cpuCfsQuota = "CpuCfsQuota", cpuShares = "CPUShares", cpuSet = "CPUSet", pidsLimit = "PidsLimit"
        case ipv4Forwarding = "IPv4Forwarding", debug = "Debug", nFd = "NFd", oomKillDisable = "OomKillDisable"
        case nGoroutines = "NGoroutines", systemTime = "SystemTime", loggingDriver = "LoggingDriver"
        case cgroupDriver = "CgroupDriver", cgroupVersion = "CgroupVersion", nEventsListener = "NEventsListener"
        case kernelVersion = "KernelVersion", operatingSystem = "OperatingSystem", osVersion = "OSVersion"
        case osType = "OSType", architecture = "Architecture", indexServerAddress = "IndexServerAddress"
        case registryConfig = "RegistryConfig", ncpu = "NCPU", memTotal = "MemTotal", dockerRootDir = "DockerRootDir"
        case httpProxy = "HttpProxy", httpsProxy = "HttpsProxy", noProxy = "NoProxy", name = "Name", labels = "Labels"
        case experimentalBuild = "ExperimentalBuild", serverVersion = "ServerVersion", runtimes = "Runtimes"
        case defaultRuntime = "DefaultRuntime", swarm = "Swarm", liveRestoreEnabled = "LiveRestoreEnabled"
        case isolation = "Isolation", initBinary = "InitBinary", containerdCommit = "ContainerdCommit"
        case runcCommit = "RuncCommit", initCommit = "InitCommit", securityOptions = "SecurityOptions"
        case cdiSpecDirs = "CDISpecDirs", warnings = "Warnings"
    }

    init(_ i: EngineInfo, experimental: Bool) {
        id = i.id
        containers = i.containers.total
        containersRunning = i.containers.running
        containersPaused = i.containers.paused
        containersStopped = i.containers.stopped
        images = i.images
        driver = i.storageDriver
        driverStatus = i.driverStatus.map { [$0.0, $0.1] }
        plugins = Plugins(volume: i.volumePlugins, network: i.networkPlugins, authorization: nil, log: i.logPlugins)
        let r = i.host.resources
        memoryLimit = r.memoryLimit
        swapLimit = r.swapLimit
        kernelMemoryTCP = r.kernelMemoryTCP ? true : nil
        cpuCfsPeriod = r.cpuCfsPeriod
        cpuCfsQuota = r.cpuCfsQuota
        cpuShares = r.cpuShares
        cpuSet = r.cpuSet
        pidsLimit = r.pidsLimit
        ipv4Forwarding = i.ipv4Forwarding
        debug = i.debug
        nFd = i.fileDescriptors
        oomKillDisable = r.oomKillDisable
        nGoroutines = i.threads
        systemTime = i.systemTime
        loggingDriver = i.loggingDriver
        cgroupDriver = i.host.cgroupDriver
        cgroupVersion = i.host.cgroupVersion
        nEventsListener = i.eventListeners
        kernelVersion = i.host.kernelVersion
        operatingSystem = i.host.operatingSystem
        osVersion = i.host.osVersion
        osType = "linux"
        architecture = i.host.architecture
        indexServerAddress = "https://index.docker.io/v1/"
        registryConfig = RegistryConfig(
            insecureRegistryCIDRs: i.insecureRegistries,
            indexConfigs: ["docker.io": IndexInfo(name: "docker.io", mirrors: i.registryMirrors, secure: true, official: true)],
            mirrors: i.registryMirrors.isEmpty ? nil : i.registryMirrors)
        ncpu = i.host.cpus
        memTotal = i.host.memoryBytes
        dockerRootDir = i.dataRoot
        httpProxy = i.httpProxy
        httpsProxy = i.httpsProxy
        noProxy = i.noProxy
        name = i.name
        labels = i.labels
        experimentalBuild = experimental
        serverVersion = i.serverVersion
        runtimes = Dictionary(i.runtimes.map { ($0.name, Runtime(path: $0.path)) }, uniquingKeysWith: { a, _ in a })
        defaultRuntime = i.defaultRuntime
        swarm = SwarmInfo()
        liveRestoreEnabled = i.liveRestore
        isolation = ""
        initBinary = ""
        containerdCommit = Commit(id: "")
        runcCommit = Commit(id: "")
        initCommit = Commit(id: "")
        securityOptions = i.securityOptions
        cdiSpecDirs = []
        warnings = i.warnings
    }
}
