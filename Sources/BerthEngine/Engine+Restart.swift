import BerthOS
import FoundationEssentials
import Glibc

/// Restart policies, as Docker applies them: `no`, `always`, `unless-stopped`, `on-failure[:N]`.
/// The delay starts at 100 ms and doubles per consecutive restart up to a minute; a run that
/// lasted 10 s or more starts the count over.
extension Engine {
    static func validateRestartPolicy(_ hc: DockerHostConfig) throws(EngineError) {
        guard let policy = hc.restartPolicy, let name = policy.name, !name.isEmpty, name != "no" else {
            if (hc.restartPolicy?.maximumRetryCount ?? 0) != 0 {
                throw EngineError(.invalidArgument, "invalid restart policy: maximum retry count can only be used with 'on-failure'")
            }
            return
        }
        switch name {
        case "always", "unless-stopped":
            if (policy.maximumRetryCount ?? 0) != 0 {
                throw EngineError(.invalidArgument, "invalid restart policy: maximum retry count can only be used with 'on-failure'")
            }
        case "on-failure":
            if (policy.maximumRetryCount ?? 0) < 0 {
                throw EngineError(.invalidArgument, "invalid restart policy: maximum retry count cannot be negative")
            }
        default:
            throw EngineError(.invalidArgument, "invalid restart policy: unknown policy '\(name)'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'")
        }
        if hc.autoRemove == true {
            throw EngineError(.invalidArgument, "conflicting options: cannot specify both --restart and --rm")
        }
    }

    /// Whether the policy restarts a container that just exited on its own.
    static func wantsRestart(_ rec: ContainerRecord) -> Bool {
        guard !rec.manuallyStopped, let policy = rec.hostConfig.restartPolicy else { return false }
        switch policy.name ?? "" {
        case "always", "unless-stopped": return true
        case "on-failure":
            let max = policy.maximumRetryCount ?? 0
            return rec.exitCode != 0 && (max == 0 || rec.restartCount < max)
        default: return false
        }
    }

    func scheduleRestartIfWanted(_ id: String) {
        guard var rec = containers[id], Self.wantsRestart(rec), (try? rec.transition(to: .restarting)) != nil else { return }
        let ranFor = Timestamp.unixSeconds(rec.finishedAt).flatMap { end in
            Timestamp.unixSeconds(rec.startedAt).map { end - $0 }
        } ?? 0
        if ranFor >= 10 { restartDelays[id] = nil }
        let delay = restartDelays[id].map { min($0 * 2, 60_000) } ?? 100
        restartDelays[id] = delay
        containers[id] = rec
        try? persist(rec)
        Task {
            try? await Task.sleep(for: .milliseconds(delay))
            await self.restartByPolicy(id)
        }
    }

    func restartByPolicy(_ id: String) async {
        guard var rec = containers[id], rec.status == .restarting else { return }
        rec.restartCount += 1
        containers[id] = rec
        do {
            try await start(id, byPolicy: true)
        } catch {
            guard var rec = containers[id], rec.status == .restarting else { return }
            try? rec.transition(to: .exited)
            rec.exitCode = 128
            containers[id] = rec
            try? persist(rec)
            scheduleRestartIfWanted(id)
        }
    }

    /// At daemon start: containers whose policy says they should be running and are not.
    func restartAfterDaemonStart() async {
        for rec in containers.values where !rec.running {
            let policy = rec.hostConfig.restartPolicy?.name ?? ""
            // `always` overrides a manual stop here, as Docker's does; `unless-stopped` does not.
            let wanted = rec.status == .restarting
                || (policy == "always" && rec.status != .created)
                || (policy == "unless-stopped" && !rec.manuallyStopped && rec.status != .created)
            guard wanted else { continue }
            var rec = rec
            if rec.status != .restarting { try? rec.transition(to: .restarting) }
            containers[rec.id] = rec
            try? await start(rec.id, byPolicy: true)
        }
    }
}
