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
        enum CodingKeys: String, CodingKey {
            case status = "Status", running = "Running", paused = "Paused", restarting = "Restarting"
            case oomKilled = "OOMKilled", dead = "Dead", pid = "Pid", exitCode = "ExitCode", error = "Error"
            case startedAt = "StartedAt", finishedAt = "FinishedAt"
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
    var mounts: [EmptyJSON] = []
    var networkSettings = NetworkSettings()

    enum CodingKeys: String, CodingKey {
        case id = "Id", created = "Created", path = "Path", args = "Args", state = "State", image = "Image"
        case name = "Name", restartCount = "RestartCount", driver = "Driver", platform = "Platform"
        case hostConfig = "HostConfig", config = "Config", mounts = "Mounts", networkSettings = "NetworkSettings"
    }

    init(_ r: ContainerRecord) {
        id = r.id
        created = r.created
        path = r.path
        args = r.args
        state = State(status: r.status.rawValue, running: r.running, dead: r.status == .dead, pid: r.pid,
                      exitCode: r.exitCode, error: r.error, startedAt: r.startedAt, finishedAt: r.finishedAt)
        image = r.imageID
        name = r.name
        hostConfig = r.hostConfig
        var config = r.config
        config.image = r.image
        if config.hostname == nil || config.hostname == "" { config.hostname = String(r.id.prefix(12)) }
        self.config = config
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
    var labels: [String: String]
    var state: String
    var status: String
    var hostConfig: HostConfig
    var networkSettings = DockerContainerInspect.NetworkSettings()
    var mounts: [EmptyJSON] = []

    enum CodingKeys: String, CodingKey {
        case id = "Id", names = "Names", image = "Image", imageID = "ImageID", command = "Command", created = "Created"
        case ports = "Ports", labels = "Labels", state = "State", status = "Status", hostConfig = "HostConfig"
        case networkSettings = "NetworkSettings", mounts = "Mounts"
    }

    init(_ r: ContainerRecord, now: Int64) {
        id = r.id
        names = [r.name]
        image = r.image
        imageID = r.imageID
        command = ([r.path] + r.args).map { $0.contains(" ") ? "\"\($0)\"" : $0 }.joined(separator: " ")
        created = Timestamp.unixSeconds(r.created) ?? 0
        labels = r.config.labels ?? [:]
        state = r.status.rawValue
        switch r.status {
        case .running:
            status = "Up " + Self.humanDuration(now - (Timestamp.unixSeconds(r.startedAt) ?? now))
        case .exited:
            status = "Exited (\(r.exitCode)) " + Self.humanDuration(now - (Timestamp.unixSeconds(r.finishedAt) ?? now)) + " ago"
        case .created: status = "Created"
        default: status = r.status.rawValue.capitalized
        }
        hostConfig = HostConfig(networkMode: r.hostConfig.networkMode ?? "default")
    }

    /// Docker's `units.HumanDuration`.
    static func humanDuration(_ seconds: Int64) -> String {
        switch seconds {
        case ..<1: return "Less than a second"
        case 1: return "1 second"
        case ..<60: return "\(seconds) seconds"
        case ..<120: return "About a minute"
        case ..<3600: return "\(seconds / 60) minutes"
        case ..<7200: return "About an hour"
        case ..<(48 * 3600): return "\(seconds / 3600) hours"
        default: return "\(seconds / 86400) days"
        }
    }
}

extension String {
    fileprivate var capitalized: String { prefix(1).uppercased() + dropFirst() }
}

struct EmptyJSON: Encodable, Sendable {}

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
