import BerthOCI
import BerthOS
import FoundationEssentials
import Glibc
import Synchronization

/// `State.Health` in inspect, as Docker shows and persists it.
public struct HealthState: Codable, Sendable, Equatable {
    public var status: String
    public var failingStreak = 0
    /// The last five probes, oldest first.
    public var log: [HealthProbe] = []

    enum CodingKeys: String, CodingKey { case status = "Status", failingStreak = "FailingStreak", log = "Log" }
}

public struct HealthProbe: Codable, Sendable, Equatable {
    public var start: String
    public var end: String
    public var exitCode: Int
    public var output: String

    enum CodingKeys: String, CodingKey { case start = "Start", end = "End", exitCode = "ExitCode", output = "Output" }
}

/// Health checks as dockerd runs them: a probe (an exec in the container) every `Interval`
/// (every `StartInterval` during `StartPeriod`), `Timeout` per probe, `Retries` consecutive
/// failures to become unhealthy; failures during the start period do not count.
extension Engine {
    struct HealthSettings {
        var command: [String]
        var interval: Duration
        var timeout: Duration
        var startPeriod: Duration
        var startInterval: Duration
        var retries: Int
    }

    static let second: Int64 = 1_000_000_000

    /// The container's check over the image's, field by field, with Docker's defaults; nil when
    /// there is none or it is `NONE`.
    static func healthSettings(_ rec: ContainerRecord, image: ContainerConfig.Healthcheck?) -> HealthSettings? {
        let own = rec.config.healthcheck
        let test = (own?.test?.isEmpty == false ? own?.test : image?.test) ?? []
        let command: [String]
        switch test.first {
        case "CMD": command = Array(test.dropFirst())
        case "CMD-SHELL": command = ["/bin/sh", "-c", test.dropFirst().joined(separator: " ")]
        default: return nil  // NONE, empty or unknown
        }
        guard !command.isEmpty else { return nil }
        func pick(_ mine: Int64?, _ theirs: Int64?, _ fallback: Int64) -> Duration {
            .nanoseconds((mine ?? 0) > 0 ? mine! : ((theirs ?? 0) > 0 ? theirs! : fallback))
        }
        return HealthSettings(
            command: command,
            interval: pick(own?.interval, image?.interval, 30 * second),
            timeout: pick(own?.timeout, image?.timeout, 30 * second),
            startPeriod: pick(own?.startPeriod, image?.startPeriod, 0),
            startInterval: pick(own?.startInterval, image?.startInterval, 5 * second),
            retries: (own?.retries ?? 0) > 0 ? own!.retries! : ((image?.retries ?? 0) > 0 ? image!.retries! : 3))
    }

    /// Starts probing a container that has just started, if it has a check.
    func startHealthChecks(_ id: String) {
        guard var rec = containers[id] else { return }
        let imageCheck = try? images.image(rec.imageID).config.config?.healthcheck
        guard let settings = Self.healthSettings(rec, image: imageCheck ?? nil) else {
            if rec.health != nil {
                rec.health = nil
                containers[id] = rec
            }
            return
        }
        rec.health = HealthState(status: "starting", failingStreak: 0, log: rec.health?.log ?? [])
        containers[id] = rec
        let run = rec.startedAt
        let started = ContinuousClock.now
        Task {
            while true {
                let inStartPeriod = ContinuousClock.now - started < settings.startPeriod
                try? await Task.sleep(for: inStartPeriod ? min(settings.startInterval, settings.interval) : settings.interval)
                guard self.isRunning(id, run: run) else { return }
                let probe = await self.probe(id, settings)
                guard self.record(probe, for: id, run: run, settings: settings,
                                        inStartPeriod: ContinuousClock.now - started < settings.startPeriod) else { return }
            }
        }
    }

    func isRunning(_ id: String, run: String) -> Bool {
        guard let rec = containers[id] else { return false }
        return rec.status == .running && rec.startedAt == run
    }

    /// Runs the probe as an exec, keeping the first 4 KiB of output as dockerd does.
    func probe(_ id: String, _ settings: HealthSettings) async -> HealthProbe {
        let start = Timestamp.now()
        var config = ExecConfig(cmd: settings.command)
        config.attachStdout = true
        config.attachStderr = true
        let execID: String
        let session: ExecSession
        do {
            execID = try createExec(id, config)
            session = try await startExec(execID, detach: false, consoleSize: nil)
        } catch {
            return HealthProbe(start: start, end: Timestamp.now(), exitCode: -1, output: error.message)
        }
        defer { execs[execID] = nil }
        let timedOut = Mutex(false)
        let timer = Task {
            try await Task.sleep(for: settings.timeout)
            timedOut.withLock { $0 = true }
            self.killExec(execID)
        }
        let output = await withTaskGroup(of: [UInt8].self) { group in
            for stream in session.outputs {
                group.addTask {
                    var bytes: [UInt8] = []
                    while let chunk = await session.read(stream) {
                        if bytes.count < 4096 { bytes += chunk.prefix(4096 - bytes.count) }
                    }
                    return bytes
                }
            }
            var all: [UInt8] = []
            for await bytes in group { all += bytes }
            return all
        }
        await session.recorded()
        timer.cancel()
        if timedOut.withLock({ $0 }) {
            let seconds = Double(settings.timeout.components.seconds) + Double(settings.timeout.components.attoseconds) / 1e18
            return HealthProbe(start: start, end: Timestamp.now(), exitCode: -1,
                               output: "Health check exceeded timeout (\(Self.formatSeconds(seconds)))")
        }
        return HealthProbe(start: start, end: Timestamp.now(), exitCode: Int(execs[execID]?.exitCode ?? -1),
                           output: String(decoding: output.prefix(4096), as: UTF8.self))
    }

    func killExec(_ execID: String) {
        guard let exec = try? execInstance(execID), exec.pid > 0 else { return }
        Glibc.kill(exec.pid, SIGKILL)
    }

    /// Applies a probe's result; false once the run it belongs to is over.
    func record(_ probe: HealthProbe, for id: String, run: String, settings: HealthSettings, inStartPeriod: Bool) -> Bool {
        guard isRunning(id, run: run), var rec = containers[id], var health = rec.health else { return false }
        let before = health.status
        health.log.append(probe)
        if health.log.count > 5 { health.log.removeFirst(health.log.count - 5) }
        if probe.exitCode == 0 {
            health.status = "healthy"
            health.failingStreak = 0
        } else if !(inStartPeriod && health.status == "starting") {
            health.failingStreak += 1
            if health.failingStreak >= settings.retries { health.status = "unhealthy" }
        }
        rec.health = health
        containers[id] = rec
        try? persist(rec)
        if health.status != before { publish(container: rec, "health_status: " + health.status) }
        return true
    }

    static func formatSeconds(_ s: Double) -> String {
        s == s.rounded() ? "\(Int(s))s" : "\(s)s"
    }
}
