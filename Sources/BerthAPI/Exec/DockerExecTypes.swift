import BerthEngine

/// `POST /containers/{id}/exec` (Docker's `ExecConfig`).
struct DockerExecCreateRequest: Decodable, Sendable {
    var attachStdin: Bool?
    var attachStdout: Bool?
    var attachStderr: Bool?
    var tty: Bool?
    var detachKeys: String?
    var env: [String]?
    var cmd: [String]?
    var privileged: Bool?
    var user: String?
    var workingDir: String?
    /// `[height, width]`; null or absent when not a TTY.
    var consoleSize: [UInt]?

    enum CodingKeys: String, CodingKey {
        case attachStdin = "AttachStdin", attachStdout = "AttachStdout", attachStderr = "AttachStderr", tty = "Tty"
        case detachKeys = "DetachKeys", env = "Env", cmd = "Cmd", privileged = "Privileged", user = "User"
        case workingDir = "WorkingDir", consoleSize = "ConsoleSize"
    }
}

/// `POST /exec/{id}/start` (Docker's `ExecStartCheck`).
struct DockerExecStartRequest: Decodable, Sendable {
    var detach: Bool?
    var tty: Bool?
    var consoleSize: [UInt]?

    enum CodingKeys: String, CodingKey { case detach = "Detach", tty = "Tty", consoleSize = "ConsoleSize" }
}

struct DockerIDResponse: Encodable, Sendable {
    var id: String
    enum CodingKeys: String, CodingKey { case id = "Id" }
}

/// `GET /exec/{id}/json` (Docker's `ExecInspect`).
struct DockerExecInspect: Encodable, Sendable {
    struct ProcessConfig: Encodable, Sendable {
        var privileged: Bool
        var user: String
        var tty: Bool
        var entrypoint: String
        var arguments: [String]
    }

    var exec: ExecInstance

    enum CodingKeys: String, CodingKey {
        case canRemove = "CanRemove", containerID = "ContainerID", detachKeys = "DetachKeys", exitCode = "ExitCode"
        case id = "ID", openStderr = "OpenStderr", openStdin = "OpenStdin", openStdout = "OpenStdout"
        case processConfig = "ProcessConfig", running = "Running", pid = "Pid"
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        let config = exec.config
        try c.encode(false, forKey: .canRemove)
        try c.encode(exec.containerID, forKey: .containerID)
        try c.encode(config.detachKeys, forKey: .detachKeys)
        // null until the process has exited, as dockerd's *int.
        try c.encode(exec.exitCode, forKey: .exitCode)
        try c.encode(exec.id, forKey: .id)
        try c.encode(config.attachStderr, forKey: .openStderr)
        try c.encode(config.attachStdin, forKey: .openStdin)
        try c.encode(config.attachStdout, forKey: .openStdout)
        try c.encode(ProcessConfig(privileged: config.privileged, user: config.user, tty: config.tty,
                                   entrypoint: config.cmd.first ?? "", arguments: Array(config.cmd.dropFirst())),
                     forKey: .processConfig)
        try c.encode(exec.running, forKey: .running)
        try c.encode(exec.pid, forKey: .pid)
    }
}

extension TerminalSize {
    /// Docker's `[height, width]`; nil when absent or zero (no size given).
    init?(dockerPair pair: [UInt]?) {
        guard let pair, pair.count == 2, pair[0] > 0, pair[1] > 0,
              let rows = UInt16(exactly: pair[0]), let columns = UInt16(exactly: pair[1]) else { return nil }
        self.init(rows: rows, columns: columns)
    }
}
