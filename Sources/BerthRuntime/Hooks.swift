import BerthOCI
import BerthOS
import CBerthSys
import Glibc

// Hooks (runtime-spec config.md, "POSIX-platform Hooks"): each gets the container's state on
// stdin. Hooks that run in the runtime's namespaces run from here; createContainer and
// startContainer run inside the container, from the C child (see berth_spawn.h).
extension Runtime {
    /// Runs hooks in order; the first failure is thrown.
    func runHooksOrFail(_ hooks: [Hook]?, _ state: State, stage: String) throws(RuntimeError) {
        guard let hooks, !hooks.isEmpty else { return }
        let input = Array(stateJSON(state).utf8)
        for hook in hooks {
            let outcome: Command.Outcome
            do {
                outcome = try Command.run(path: hook.path, argv: hook.args ?? [hook.path], env: hook.env ?? [],
                                          stdin: input, timeout: hook.timeout.map(Double.init))
            } catch {
                throw RuntimeError(.system, "\(stage) hook \(hook.path): \(error)")
            }
            switch outcome {
            case .exited(0): continue
            case .exited(let code): throw RuntimeError(.system, "\(stage) hook \(hook.path) exited with status \(code)")
            case .signaled(let sig): throw RuntimeError(.system, "\(stage) hook \(hook.path) killed by signal \(sig)")
            case .timedOut: throw RuntimeError(.system, "\(stage) hook \(hook.path) timed out after \(hook.timeout ?? 0)s")
            }
        }
    }

    /// poststart and poststop failures are logged, not fatal (the spec says the runtime
    /// must log a warning and go on with the remaining hooks).
    func runHooks(_ hooks: [Hook]?, _ state: State, stage: String, fatal: Bool) {
        for hook in hooks ?? [] {
            do { try runHooksOrFail([hook], state, stage: stage) } catch {
                Log.warning(error.message)
            }
        }
    }
}

/// Hooks for the child: C arrays that `arena` keeps alive.
func cHooks(_ hooks: [Hook]?, _ arena: Arena) -> [berth_hook] {
    (hooks ?? []).map { h in
        berth_hook(path: arena.string(h.path), argv: UnsafePointer(arena.strings(h.args ?? [h.path])),
                   envp: UnsafePointer(arena.strings(h.env ?? [])), timeout_sec: Int32(h.timeout ?? 0))
    }
}
