import BerthOS
import BerthEngine
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

    struct NetworkSettings: Encodable, Sendable {
        var networks: [String: EmptyJSON] = [:]
        enum CodingKeys: String, CodingKey { case networks = "Networks" }
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

    init(_ r: ContainerRecord) {
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
    var ports: [EmptyJSON] = []
    /// Only with `size=1`; absent otherwise, as dockerd omits them.
    var sizeRw: Int64?
    var sizeRootFs: Int64?
    var labels: [String: String]
    var state: String
    var status: String
    var hostConfig: HostConfig
    var networkSettings = DockerContainerInspect.NetworkSettings()
    var mounts: [DockerMountPoint] = []

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
