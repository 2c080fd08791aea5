import CBerthSys
import Glibc

/// Runs a program with posix_spawn (no fork of this multi-threaded process in Swift),
/// feeding it stdin, with an optional timeout. Used for hooks and small helpers.
public enum Command {
    public enum Outcome: Sendable, Equatable {
        case exited(Int32)
        case signaled(Int32)
        case timedOut
    }

    /// `argv` is passed as is (argv[0] included), as execve and the runtime spec's hooks want.
    public static func run(path: String, argv: [String], env: [String], stdin: [UInt8] = [],
                           timeout: Double? = nil) throws(SystemError) -> Outcome {
        var fds: [Int32] = [-1, -1]
        guard berth_pipe_cloexec(&fds) == 0 else { throw SystemError("pipe") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[0], 0)

        let cargv = CStringArray(argv.isEmpty ? [path] : argv)
        let envp = CStringArray(env)
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, nil, cargv.pointer, envp.pointer)
        close(fds[0])
        guard rc == 0 else {
            close(fds[1])
            throw SystemError("spawn \(path)", errno: rc)
        }
        // A hook need not read its stdin: ignore EPIPE (MSG_NOSIGNAL is not for pipes).
        let oldPipe = signal(SIGPIPE, SIG_IGN)
        var off = 0
        while off < stdin.count {
            let n = stdin.withUnsafeBytes { write(fds[1], $0.baseAddress! + off, $0.count - off) }
            if n <= 0 { break }
            off += n
        }
        close(fds[1])
        signal(SIGPIPE, oldPipe)

        var status: Int32 = 0
        let deadline = timeout.map { monotonicSeconds() + $0 }
        while true {
            let r = berthWaitpid(pid, &status, deadline == nil ? 0 : WNOHANG)
            if r == pid { break }
            if r < 0 { throw SystemError("waitpid \(path)") }
            if let d = deadline, monotonicSeconds() >= d {
                kill(pid, SIGKILL)
                _ = berthWaitpid(pid, &status, 0)
                return .timedOut
            }
            usleep(2000)
        }
        if status & 0x7f == 0 { return .exited((status >> 8) & 0xff) }
        return .signaled(status & 0x7f)
    }

    private static func berthWaitpid(_ pid: pid_t, _ status: inout Int32, _ options: Int32) -> pid_t {
        while true {
            let r = waitpid(pid, &status, options)
            if r < 0 && errno == EINTR { continue }
            return r
        }
    }
}

public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// A NULL-terminated `char *[]` that owns its strings until it is released.
public final class CStringArray {
    public let pointer: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
    public let count: Int

    public init(_ all: [String]) {
        count = all.count
        pointer = .allocate(capacity: all.count + 1)
        for (i, s) in all.enumerated() { pointer[i] = strdup(s) }
        pointer[all.count] = nil
    }

    deinit {
        for i in 0..<count { free(pointer[i]) }
        pointer.deallocate()
    }
}

extension Command {
    /// Runs a program to completion and returns its standard output.
    public static func output(path: String, argv: [String], env: [String] = []) throws(SystemError) -> [UInt8] {
        var fds: [Int32] = [-1, -1]
        guard berth_pipe_cloexec(&fds) == 0 else { throw SystemError("pipe") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        let cargv = CStringArray(argv)
        let envp = CStringArray(env)
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, nil, cargv.pointer, envp.pointer)
        close(fds[1])
        defer { close(fds[0]) }
        guard rc == 0 else { throw SystemError("spawn \(path)", errno: rc) }
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if n > 0 { out.append(contentsOf: buf[0..<n]); continue }
            if n < 0 && errno == EINTR { continue }
            break
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return out
    }
}
