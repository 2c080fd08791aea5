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

    /// Go's zero `time.Time`, which Docker shows for "never".
    public static let zeroTime = "0001-01-01T00:00:00Z"

    public var running: Bool { status == .running }

    /// Moves to `next`, or throws `.invalidState` naming the current state.
    mutating func transition(to next: ContainerStatus) throws(EngineError) {
        let allowed: Bool
        switch (status, next) {
        case (.created, .running), (.exited, .running), (.running, .exited), (.created, .exited): allowed = true
        case (_, .removing), (_, .dead): allowed = true
        default: allowed = false
        }
        guard allowed else {
            throw EngineError(.invalidState, "cannot move container \(id) from \(status.rawValue) to \(next.rawValue)")
        }
        status = next
    }
}
