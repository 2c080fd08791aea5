import BerthOS
import Dispatch
import Glibc

/// Runs the daemon's helpers (berth-runtime, berth-monitor) with posix_spawn on a dispatch
/// thread, so the caller's task is not blocked while the helper runs.
enum HelperProcess {
    struct Result: Sendable {
        var status: Int32
        /// stdout and stderr together, as the helper wrote them.
        var output: String
        var succeeded: Bool { status == 0 }
    }

    static func run(_ path: String, _ args: [String]) async -> Result {
        await withCheckedContinuation { (done: CheckedContinuation<Result, Never>) in
            DispatchQueue.global().async { done.resume(returning: runBlocking(path, args)) }
        }
    }

    static func runBlocking(_ path: String, _ args: [String]) -> Result {
        var fds: [Int32] = [-1, -1]
        // A socketpair because it takes SOCK_CLOEXEC atomically (Glibc's module lacks pipe2).
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            return Result(status: -1, output: SystemError("socketpair").message)
        }
        let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { if devNull >= 0 { close(devNull) } }
        let pid: pid_t
        do {
            pid = try spawn(path, args, stdio: [devNull, fds[1], fds[1]])
        } catch {
            close(fds[0]); close(fds[1])
            return Result(status: -1, output: error.message)
        }
        close(fds[1])
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if n > 0 { out += buf[0..<n]; continue }
            if n < 0 && errno == EINTR { continue }
            break
        }
        close(fds[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Result(status: code, output: String(decoding: out, as: UTF8.self))
    }

    /// posix_spawn with `stdio` as the child's fds 0, 1 and 2, default signal dispositions and
    /// an empty mask (berthd ignores SIGPIPE and the stop signals; helpers must not inherit that).
    static func spawn(_ path: String, _ args: [String], stdio: [Int32]) throws(EngineError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (target, fd) in stdio.enumerated() { posix_spawn_file_actions_adddup2(&actions, fd, Int32(target)) }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var all = sigset_t()
        sigfillset(&all)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        let argv = CStringArray([path] + args)
        let env = CStringArray(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, &attr, argv.pointer, env.pointer)
        guard rc == 0 else { throw EngineError(.system, SystemError("spawn \(path)", errno: rc).message) }
        return pid
    }
}

/// A connection to a monitor's attach.sock. Reads and writes run on dispatch threads.
public final class AttachConnection: Sendable {
    let fd: Int32

    /// sun_path holds 107 bytes and a data root plus a 64-hex ID can exceed it, so the socket
    /// is reached through an O_PATH descriptor of its directory: /proc/self/fd/N/attach.sock.
    init(path: String) throws(EngineError) {
        let slash = path.lastIndex(of: "/") ?? path.startIndex
        let dirfd = open(String(path[..<slash]), FileSystem.pathOnly | O_DIRECTORY | O_CLOEXEC)
        guard dirfd >= 0 else { throw EngineError(.invalidState, SystemError("open \(path)").message) }
        defer { close(dirfd) }
        let shortPath = "/proc/self/fd/\(dirfd)/" + path[path.index(after: slash)...]
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw EngineError(.invalidState, SystemError("socket").message) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(shortPath.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(fd)
            throw EngineError(.invalidState, "attach socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let e = SystemError("connect \(path)")
            close(fd)
            throw EngineError(.invalidState, e.message)
        }
        self.fd = fd
    }

    /// The next bytes from the monitor; nil at end of stream.
    public func read() async -> [UInt8]? {
        let fd = self.fd
        return await withCheckedContinuation { (done: CheckedContinuation<[UInt8]?, Never>) in
            DispatchQueue.global().async {
                var buf = [UInt8](repeating: 0, count: 32768)
                while true {
                    let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                    if n < 0 && errno == EINTR { continue }
                    done.resume(returning: n > 0 ? Array(buf[0..<n]) : nil)
                    return
                }
            }
        }
    }

    /// Sends bytes to the container's stdin (the monitor drops them without --stdin).
    public func write(_ bytes: [UInt8]) async {
        let fd = self.fd
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                var off = 0
                while off < bytes.count {
                    let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }
                    off += n
                }
                done.resume()
            }
        }
    }

    /// Ends the container's stdin (Docker's stdin_once).
    public func closeInput() { shutdown(fd, Int32(SHUT_WR)) }

    deinit { close(fd) }
}
