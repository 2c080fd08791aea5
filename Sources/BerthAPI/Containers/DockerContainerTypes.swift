import BerthOS
import BerthEngine
import BerthNetwork
#if canImport(Glibc)
import Glibc
#endif

/// `GET /containers/{id}/json` (Docker's `ContainerJSON`, the parts Berth has).
struct DockerContainerInspect: Encodable, Sendable {
    struct State: Encodable, Sendable {
        var status: String
        var running: Bool
        var paused = false
        var restarting = false
        var oomKilled = false
        var dead: Bool
        var pid: Int32
        var exitCode: Int32
        var error: String
        var startedAt: String
        var finishedAt: String
        var health: HealthState?
        enum CodingKeys: String, CodingKey {
            case status = "Status", running = "Running", paused = "Paused", restarting = "Restarting"
            case oomKilled = "OOMKilled", dead = "Dead", pid = "Pid", exitCode = "ExitCode", error = "Error"
            case startedAt = "StartedAt", finishedAt = "FinishedAt", health = "Health"
        }
    }

    /// Docker's `EndpointSettings` for one network of the container.
    struct EndpointSettings: Encodable, Sendable {
        struct IPAMConfig: Encodable, Sendable {
            var ipv4Address: String?
            var ipv6Address: String?
            enum CodingKeys: String, CodingKey { case ipv4Address = "IPv4Address", ipv6Address = "IPv6Address" }
        }
        var ipamConfig: IPAMConfig?
        var links: [String]?
        var aliases: [String]?
        var macAddress: String
        var driverOpts: [String: String]?
        var networkID: String
        var endpointID: String
        var gateway: String
        var ipAddress: String
        var ipPrefixLen: Int
        var ipv6Gateway = ""
        var globalIPv6Address = ""
        var globalIPv6PrefixLen = 0
        var dnsNames: [String]?
        enum CodingKeys: String, CodingKey {
            case ipamConfig = "IPAMConfig", links = "Links", aliases = "Aliases", macAddress = "MacAddress"
            case driverOpts = "DriverOpts", networkID = "NetworkID", endpointID = "EndpointID", gateway = "Gateway"
            case ipAddress = "IPAddress", ipPrefixLen = "IPPrefixLen", ipv6Gateway = "IPv6Gateway"
            case globalIPv6Address = "GlobalIPv6Address", globalIPv6PrefixLen = "GlobalIPv6PrefixLen", dnsNames = "DNSNames"
        }

        /// dockerd writes empty lists and maps as `null` rather than leaving them out.
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(ipamConfig, forKey: .ipamConfig)
            try c.encode(links, forKey: .links)
            try c.encode(aliases, forKey: .aliases)
            try c.encode(macAddress, forKey: .macAddress)
            try c.encode(driverOpts, forKey: .driverOpts)
            try c.encode(networkID, forKey: .networkID)
            try c.encode(endpointID, forKey: .endpointID)
            try c.encode(gateway, forKey: .gateway)
            try c.encode(ipAddress, forKey: .ipAddress)
            try c.encode(ipPrefixLen, forKey: .ipPrefixLen)
            try c.encode(ipv6Gateway, forKey: .ipv6Gateway)
            try c.encode(globalIPv6Address, forKey: .globalIPv6Address)
            try c.encode(globalIPv6PrefixLen, forKey: .globalIPv6PrefixLen)
            try c.encode(dnsNames, forKey: .dnsNames)
        }

        init(_ ep: Endpoint, containerID: String, name: String, userDefined: Bool) {
            if ep.requestedIPv4 != nil || ep.requestedIPv6 != nil {
                ipamConfig = IPAMConfig(ipv4Address: ep.requestedIPv4?.description, ipv6Address: ep.requestedIPv6?.description)
            }
            links = ep.links.isEmpty ? nil : ep.links
            aliases = ep.aliases.isEmpty ? nil : ep.aliases
            macAddress = ep.macAddress
            driverOpts = ep.driverOpts.isEmpty ? nil : ep.driverOpts
            networkID = ep.networkID
            endpointID = ep.endpointID
            gateway = ep.gateway?.description ?? ""
            ipAddress = ep.ipv4?.description ?? ""
            ipPrefixLen = ep.prefixLength
            ipv6Gateway = ep.gateway6?.description ?? ""
            globalIPv6Address = ep.ipv6?.description ?? ""
            globalIPv6PrefixLen = ep.prefixLength6 ?? 0
            // What the embedded DNS answers for it (user-defined networks only).
            dnsNames = userDefined ? [name, String(containerID.prefix(12))] + ep.aliases : nil
        }
    }

    struct PortBinding: Encodable, Sendable {
        var hostIp: String
        var hostPort: String
        enum CodingKeys: String, CodingKey { case hostIp = "HostIp", hostPort = "HostPort" }
    }

    struct NetworkSettings: Encodable, Sendable {
        var bridge = ""
        var sandboxID = ""
        var sandboxKey = ""
        /// Exposed and published ports: null for an exposed port that is not published.
        var ports: [String: [PortBinding]?] = [:]
        var hairpinMode = false
        var endpointID = ""
        var gateway = ""
        var ipAddress = ""
        var ipPrefixLen = 0
        var macAddress = ""
        var networks: [String: EndpointSettings] = [:]
        enum CodingKeys: String, CodingKey {
            case bridge = "Bridge", sandboxID = "SandboxID", sandboxKey = "SandboxKey", ports = "Ports"
            case hairpinMode = "HairpinMode", endpointID = "EndpointID", gateway = "Gateway", ipAddress = "IPAddress"
            case ipPrefixLen = "IPPrefixLen", macAddress = "MacAddress", networks = "Networks"
        }

        init() {}

        init(_ r: ContainerRecord, sandboxKey key: String?) {
            let name = String(r.name.dropFirst())
            for (netName, ep) in r.endpoints ?? [:] {
                networks[netName] = EndpointSettings(ep, containerID: r.id, name: name, userDefined: netName != "bridge")
            }
            if let ep = r.endpoints?["bridge"] {
                // The top-level fields are the default bridge's, as in dockerd.
                endpointID = ep.endpointID
                gateway = ep.gateway?.description ?? ""
                ipAddress = ep.ipv4?.description ?? ""
                ipPrefixLen = ep.prefixLength
                macAddress = ep.macAddress
            }
            if r.running, let key {
                sandboxKey = key
                sandboxID = r.id
            }
            if r.running {
                for key in (r.config.exposedPorts ?? [:]).keys { ports[key] = .some(nil) }
                for p in r.publishedPorts ?? [] {
                    var list = ports[p.key].flatMap { $0 } ?? []
                    list.append(PortBinding(hostIp: p.hostIP, hostPort: String(p.hostPort)))
                    ports[p.key] = list
                }
            }
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(bridge, forKey: .bridge)
            try c.encode(sandboxID, forKey: .sandboxID)
            try c.encode(sandboxKey, forKey: .sandboxKey)
            // `null` values must be written out: `docker port` and the SDK read them.
            var ports = c.nestedContainer(keyedBy: AnyKey.self, forKey: .ports)
            for (key, list) in self.ports.sorted(by: { $0.key < $1.key }) {
                if let list { try ports.encode(list, forKey: AnyKey(key)) } else { try ports.encodeNil(forKey: AnyKey(key)) }
            }
            try c.encode(hairpinMode, forKey: .hairpinMode)
            try c.encode(endpointID, forKey: .endpointID)
            try c.encode(gateway, forKey: .gateway)
            try c.encode(ipAddress, forKey: .ipAddress)
            try c.encode(ipPrefixLen, forKey: .ipPrefixLen)
            try c.encode(macAddress, forKey: .macAddress)
            try c.encode(networks, forKey: .networks)
        }
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ s: String) { stringValue = s }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    var id: String
    var created: String
    var path: String
    var args: [String]
    var state: State
    var image: String
    var name: String
    var restartCount = 0
    var driver = "overlay2"
    var platform = "linux"
    var hostConfig: DockerHostConfig
    var config: DockerContainerConfig
    var mounts: [DockerMountPoint] = []
    var networkSettings = NetworkSettings()
    /// Running execs; absent when none.
    var execIDs: [String]?

    enum CodingKeys: String, CodingKey {
        case id = "Id", created = "Created", path = "Path", args = "Args", state = "State", image = "Image"
        case name = "Name", restartCount = "RestartCount", driver = "Driver", platform = "Platform"
        case hostConfig = "HostConfig", config = "Config", mounts = "Mounts", networkSettings = "NetworkSettings"
        case execIDs = "ExecIDs"
    }

    init(_ r: ContainerRecord, sandboxKey: String? = nil) {
        id = r.id
        created = r.created
        path = r.path
        args = r.args
        state = State(status: r.status.rawValue, running: r.running, dead: r.status == .dead, pid: r.pid,
                      exitCode: r.exitCode, error: r.error, startedAt: r.startedAt, finishedAt: r.finishedAt)
        state.oomKilled = r.oomKilled
        state.health = r.health
        state.restarting = r.status == .restarting
        state.paused = r.status == .paused
        restartCount = r.restartCount
        image = r.imageID
        name = r.name
        hostConfig = r.hostConfig
        var config = r.config
        config.image = r.image
        if config.hostname == nil || config.hostname == "" { config.hostname = String(r.id.prefix(12)) }
        self.config = config
        mounts = (r.mounts ?? []).map(DockerMountPoint.init)
        networkSettings = NetworkSettings(r, sandboxKey: sandboxKey)
    }
}

/// A row of `GET /containers/json` (Docker's `container.Summary`).
struct DockerContainerSummary: Encodable, Sendable {
    struct HostConfig: Encodable, Sendable {
        var networkMode: String
        enum CodingKeys: String, CodingKey { case networkMode = "NetworkMode" }
    }

    var id: String
    var names: [String]
    var image: String
    var imageID: String
    var command: String
    var created: Int64
    var ports: [Port] = []
    /// Only with `size=1`; absent otherwise, as dockerd omits them.
    var sizeRw: Int64?
    var sizeRootFs: Int64?
    var labels: [String: String]
    var state: String
    var status: String
    var hostConfig: HostConfig
    var networkSettings = SummaryNetworks()
    var mounts: [DockerMountPoint] = []

    /// A row's port (`container.Port`): no public side for one that is only exposed.
    struct Port: Encodable, Sendable {
        var ip: String?
        var privatePort: UInt16
        var publicPort: UInt16?
        var type: String
        enum CodingKeys: String, CodingKey { case ip = "IP", privatePort = "PrivatePort", publicPort = "PublicPort", type = "Type" }
    }

    struct SummaryNetworks: Encodable, Sendable {
        var networks: [String: DockerContainerInspect.EndpointSettings] = [:]
        enum CodingKeys: String, CodingKey { case networks = "Networks" }
    }

    enum CodingKeys: String, CodingKey {
        case id = "Id", names = "Names", image = "Image", imageID = "ImageID", command = "Command", created = "Created"
        case ports = "Ports", sizeRw = "SizeRw", sizeRootFs = "SizeRootFs", labels = "Labels", state = "State"
        case status = "Status", hostConfig = "HostConfig", networkSettings = "NetworkSettings", mounts = "Mounts"
    }

    /// `now` in nanoseconds since the epoch.
    init(_ row: Engine.Listing, now: Int64) {
        let r = row.record
        id = r.id
        names = [r.name]
        image = r.image
        imageID = r.imageID
        command = ([r.path] + r.args).map { $0.contains(" ") ? "\"\($0)\"" : $0 }.joined(separator: " ")
        created = (Timestamp.nanoseconds(rfc3339: r.created) ?? 0) / 1_000_000_000
        sizeRw = row.sizeRw
        sizeRootFs = row.sizeRootFs
        labels = r.config.labels ?? [:]
        state = r.status.rawValue
        status = Self.status(r, now: now)
        hostConfig = HostConfig(networkMode: r.hostConfig.networkMode ?? "default")
        mounts = (r.mounts ?? []).map(DockerMountPoint.init)
        networkSettings.networks = DockerContainerInspect.NetworkSettings(r, sandboxKey: nil).networks
        let published = r.running ? (r.publishedPorts ?? []) : []
        ports = published.map { Port(ip: $0.hostIP, privatePort: $0.containerPort, publicPort: $0.hostPort, type: $0.proto.rawValue) }
        for key in (r.config.exposedPorts ?? [:]).keys.sorted() where !published.contains(where: { $0.key == key }) {
            let parts = key.split(separator: "/")
            if let port = parts.first.flatMap({ UInt16($0) }) {
                ports.append(Port(privatePort: port, type: parts.count > 1 ? String(parts[1]) : "tcp"))
            }
        }
    }

    /// dockerd's `State.String()`: `Up 3 seconds`, `Up 2 minutes (Paused)`, `Exited (0) 5 seconds ago`, ...
    static func status(_ r: ContainerRecord, now: Int64) -> String {
        func since(_ time: String) -> String { humanDuration(now - (Timestamp.nanoseconds(rfc3339: time) ?? now)) }
        switch r.status {
        case .running:
            // dockerd: `Up 3 seconds (healthy)`, `(health: starting)` while starting.
            let health = r.health.map { $0.status == "starting" ? " (health: starting)" : " (\($0.status))" } ?? ""
            return "Up " + since(r.startedAt) + health
        case .paused: return "Up " + since(r.startedAt) + " (Paused)"
        case .restarting: return "Restarting (\(r.exitCode)) " + since(r.finishedAt) + " ago"
        case .removing: return "Removal In Progress"
        case .dead: return "Dead"
        case .created, .exited:
            if r.startedAt == ContainerRecord.zeroTime { return "Created" }
            if r.finishedAt == ContainerRecord.zeroTime { return "" }
            return "Exited (\(r.exitCode)) " + since(r.finishedAt) + " ago"
        }
    }

    /// go-units' `HumanDuration` of a span in nanoseconds.
    static func humanDuration(_ nanos: Int64) -> String {
        let seconds = nanos / 1_000_000_000
        let minutes = seconds / 60
        let hours = (nanos + 1_800_000_000_000) / 3_600_000_000_000  // rounded to the nearest hour
        switch true {
        case seconds < 1: return "Less than a second"
        case seconds == 1: return "1 second"
        case seconds < 60: return "\(seconds) seconds"
        case minutes == 1: return "About a minute"
        case minutes < 60: return "\(minutes) minutes"
        case hours == 1: return "About an hour"
        case hours < 48: return "\(hours) hours"
        case hours < 24 * 7 * 2: return "\(hours / 24) days"
        case hours < 24 * 30 * 2: return "\(hours / 24 / 7) weeks"
        case hours < 24 * 365 * 2: return "\(hours / 24 / 30) months"
        default: return "\(nanos / 3_600_000_000_000 / 24 / 365) years"
        }
    }
}

/// `POST /containers/prune`.
struct DockerContainerPruneResponse: Encodable, Sendable {
    var containersDeleted: [String]
    var spaceReclaimed: Int64
    enum CodingKeys: String, CodingKey { case containersDeleted = "ContainersDeleted", spaceReclaimed = "SpaceReclaimed" }
}

/// `POST /containers/{id}/update`.
struct DockerContainerUpdateResponse: Encodable, Sendable {
    var warnings: [String]
    enum CodingKeys: String, CodingKey { case warnings = "Warnings" }
}

struct EmptyJSON: Encodable, Sendable {}

/// Docker's `MountPoint`, in inspect's `Mounts` and the list's; `Name` and `Driver` only for
/// volumes.
struct DockerMountPoint: Encodable, Sendable {
    var type: String
    var name: String?
    var source: String
    var destination: String
    var driver: String?
    var mode: String
    var rw: Bool
    var propagation: String

    enum CodingKeys: String, CodingKey {
        case type = "Type", name = "Name", source = "Source", destination = "Destination", driver = "Driver"
        case mode = "Mode", rw = "RW", propagation = "Propagation"
    }

    init(_ m: ContainerMount) {
        type = m.type
        name = m.name.isEmpty ? nil : m.name
        source = m.source
        destination = m.destination
        driver = m.driver.isEmpty ? nil : m.driver
        mode = m.mode
        rw = m.rw
        propagation = m.propagation
    }
}

struct DockerCreateResponse: Encodable, Sendable {
    var id: String
    var warnings: [String]
    enum CodingKeys: String, CodingKey { case id = "Id", warnings = "Warnings" }
}

/// `{"StatusCode":N,"Error":null}`: Docker sends the null.
struct DockerWaitResponse: Encodable, Sendable {
    var statusCode: Int32
    enum CodingKeys: String, CodingKey { case statusCode = "StatusCode", error = "Error" }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(statusCode, forKey: .statusCode)
        try c.encodeNil(forKey: .error)
    }
}
