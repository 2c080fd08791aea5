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
        let (pid, input) = try spawn(path: path, argv: argv, env: env, pipeTo: 0)
        // A hook need not read its stdin: ignore EPIPE while feeding it.
        let oldPipe = signal(SIGPIPE, SIG_IGN)
        var off = 0
        while off < stdin.count {
            let n = stdin.withUnsafeBytes { write(input, $0.baseAddress! + off, $0.count - off) }
            if n <= 0 { break }
            off += n
        }
        close(input)
        signal(SIGPIPE, oldPipe)

        var status: Int32 = 0
        let deadline = timeout.map { monotonicSeconds() + $0 }
        while true {
            let r = berth_waitpid(pid, &status, deadline == nil ? 0 : WNOHANG)
            if r == pid { break }
            if r < 0 { throw SystemError("waitpid \(path)") }
            if let d = deadline, monotonicSeconds() >= d {
                kill(pid, SIGKILL)
                _ = berth_waitpid(pid, &status, 0)
                return .timedOut
            }
            usleep(2000)
        }
        if status & 0x7f == 0 { return .exited((status >> 8) & 0xff) }
        return .signaled(status & 0x7f)
    }

    /// Runs a program to completion and returns its standard output.
    public static func output(path: String, argv: [String], env: [String] = []) throws(SystemError) -> [UInt8] {
        let (pid, output) = try spawn(path: path, argv: argv, env: env, pipeTo: 1)
        defer { close(output) }
        let out = Result { () throws(SystemError) in try FileSystem.readToEnd(output, what: "output of \(path)") }
        var status: Int32 = 0
        _ = berth_waitpid(pid, &status, 0)
        return try out.get()
    }

    /// posix_spawn with one end of a pipe as the child's fd `pipeTo` (0 or 1); returns the
    /// pid and our end of the pipe.
    private static func spawn(path: String, argv: [String], env: [String], pipeTo: Int32) throws(SystemError) -> (pid_t, Int32) {
        var fds: [Int32] = [-1, -1]
        guard berth_pipe_cloexec(&fds) == 0 else { throw SystemError("pipe") }
        let (theirs, ours) = pipeTo == 0 ? (fds[0], fds[1]) : (fds[1], fds[0])
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, theirs, pipeTo)
        let cargv = CStringArray(argv.isEmpty ? [path] : argv)
        let envp = CStringArray(env)
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, nil, cargv.pointer, envp.pointer)
        close(theirs)
        guard rc == 0 else {
            close(ours)
            throw SystemError("spawn \(path)", errno: rc)
        }
        return (pid, ours)
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
