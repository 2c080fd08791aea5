import CBerthSys
import Glibc

/// The terminal of a container run in the foreground without --console-socket (as `runc run`
/// from a shell): the child sends the pty master over a socketpair and the runtime relays
/// between its own stdio and the pty until the process exits.
final class ForegroundConsole {
    let childEnd: Int32
    private let ourEnd: Int32

    init?(needed: Bool) throws(RuntimeError) {
        guard needed else { return nil }
        var sv: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sv) == 0 else {
            throw RuntimeError(.system, "socketpair for the terminal: \(errnoText())")
        }
        ourEnd = sv[0]
        childEnd = sv[1]
    }

    deinit {
        close(ourEnd)
        close(childEnd)
    }

    /// Relays until pid exits; returns its wait status.
    func proxy(to pid: Int32) -> Int32 {
        let master = berth_recv_fd(ourEnd)
        guard master >= 0 else { return waitForeground(pid) }
        defer { close(master) }
        var status: Int32 = 0
        _ = berth_tty_proxy(master, pid, &status)
        return status
    }
}

/// Waits for a foreground process, passing on the signals a shell would send it.
func waitForeground(_ pid: Int32) -> Int32 {
    berth_forward_signals(pid)
    var status: Int32 = 0
    _ = berth_waitpid(pid, &status, 0)
    return status
}
