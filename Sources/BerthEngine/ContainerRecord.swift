import BerthNetwork
import FoundationEssentials
import Glibc

/// A container's lifecycle state; `ContainerRecord.transition` is the one place it changes.
public enum ContainerStatus: String, Codable, Sendable {
    case created, running, paused, restarting, removing, exited, dead
}

/// What `<root>/containers/<id>/container.json` holds.
public struct ContainerRecord: Codable, Sendable {
    public var id: String
    /// With Docker's leading slash: `/web`.
    public var name: String
    /// RFC 3339 with nanoseconds.
    public var created: String
    public var image: String
    /// The image ID (`sha256:…`).
    public var imageID: String
    public var path: String
    public var args: [String]
    public var config: DockerContainerConfig
    public var hostConfig: DockerHostConfig
    public var status: ContainerStatus = .created
    public var pid: Int32 = 0
    public var exitCode: Int32 = 0
    public var error: String = ""
    public var startedAt: String = ContainerRecord.zeroTime
    public var finishedAt: String = ContainerRecord.zeroTime
    /// Whether the overlay is mounted at bundle/rootfs now.
    public var rootfsMounted = false
    /// The runtime knows the container (between monitor launch and runtime delete).
    public var runtimeCreated = false
    /// The berth-monitor process watching the current run (0 when none).
    public var monitorPid: Int32 = 0
    public var oomKilled = false
    /// Restarts made by the restart policy since the last start by a user.
    public var restartCount = 0
    /// Stopped or killed by a user: `always` and `unless-stopped` leave it alone until started
    /// again (`always` restarts it when the daemon starts; `unless-stopped` does not).
    public var manuallyStopped = false
    /// Present when the container (or its image) has a health check.
    public var health: HealthState?
    /// Resolved binds, volumes and tmpfs mounts (Engine+Volumes). Optional so records written
    /// before it existed still decode.
    public var mounts: [ContainerMount]?
    /// The networks it is attached to, by network name (Engine+Networks).
    public var endpoints: [String: Endpoint]?
    /// Published ports with their host ports, while it runs.
    public var publishedPorts: [PublishedPort]?
    /// Its network sandbox is set up (between start and exit).
    public var networkReady = false

    /// Go's zero `time.Time`, which Docker shows for "never".
    public static let zeroTime = "0001-01-01T00:00:00Z"

    /// A paused container is still running, as Docker's `State.Running` says.
    public var running: Bool { status == .running || status == .paused }

    /// Moves to `next`, or throws `.invalidState` naming the current state.
    mutating func transition(to next: ContainerStatus) throws(EngineError) {
        let allowed: Bool
        switch (status, next) {
        case (.created, .running), (.exited, .running), (.running, .exited), (.created, .exited): allowed = true
        case (.exited, .restarting), (.restarting, .running), (.restarting, .exited): allowed = true
        case (.running, .paused), (.paused, .running), (.paused, .exited): allowed = true
        case (_, .removing), (_, .dead): allowed = true
        default: allowed = false
        }
        guard allowed else {
            throw EngineError(.invalidState, "cannot move container \(id) from \(status.rawValue) to \(next.rawValue)")
        }
        status = next
    }
}

extension ContainerRecord {
    enum CodingKeys: String, CodingKey {
        case id, name, created, image, imageID, path, args, config, hostConfig, status, pid, exitCode, error
        case startedAt, finishedAt, rootfsMounted, runtimeCreated, monitorPid, oomKilled, restartCount
        case manuallyStopped, health, mounts, endpoints, publishedPorts, networkReady
    }

    /// Records written by an older berthd lack the newer fields: those take their defaults, so
    /// an upgrade never drops a container.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        name = try c.decode(String.self, forKey: .name)
        created = try c.decode(String.self, forKey: .created)
        image = try c.decode(String.self, forKey: .image)
        imageID = try c.decode(String.self, forKey: .imageID)
        path = try c.decodeIfPresent(String.self, forKey: .path) ?? ""
        args = try c.decodeIfPresent([String].self, forKey: .args) ?? []
        config = try c.decode(DockerContainerConfig.self, forKey: .config)
        hostConfig = try c.decode(DockerHostConfig.self, forKey: .hostConfig)
        status = try c.decodeIfPresent(ContainerStatus.self, forKey: .status) ?? .created
        pid = try c.decodeIfPresent(Int32.self, forKey: .pid) ?? 0
        exitCode = try c.decodeIfPresent(Int32.self, forKey: .exitCode) ?? 0
        error = try c.decodeIfPresent(String.self, forKey: .error) ?? ""
        startedAt = try c.decodeIfPresent(String.self, forKey: .startedAt) ?? Self.zeroTime
        finishedAt = try c.decodeIfPresent(String.self, forKey: .finishedAt) ?? Self.zeroTime
        rootfsMounted = try c.decodeIfPresent(Bool.self, forKey: .rootfsMounted) ?? false
        runtimeCreated = try c.decodeIfPresent(Bool.self, forKey: .runtimeCreated) ?? false
        monitorPid = try c.decodeIfPresent(Int32.self, forKey: .monitorPid) ?? 0
        oomKilled = try c.decodeIfPresent(Bool.self, forKey: .oomKilled) ?? false
        restartCount = try c.decodeIfPresent(Int.self, forKey: .restartCount) ?? 0
        manuallyStopped = try c.decodeIfPresent(Bool.self, forKey: .manuallyStopped) ?? false
        health = try c.decodeIfPresent(HealthState.self, forKey: .health)
        mounts = try c.decodeIfPresent([ContainerMount].self, forKey: .mounts)
        endpoints = try c.decodeIfPresent([String: Endpoint].self, forKey: .endpoints)
        publishedPorts = try c.decodeIfPresent([PublishedPort].self, forKey: .publishedPorts)
        networkReady = try c.decodeIfPresent(Bool.self, forKey: .networkReady) ?? false
    }
}
