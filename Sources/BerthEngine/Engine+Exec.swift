import BerthOCI
import BerthOS
import CBerthSys
import Dispatch
import FoundationEssentials
import Glibc
import Synchronization

/// What `docker exec` asks for (Docker's `ExecConfig`).
public struct ExecConfig: Sendable {
    public var cmd: [String]
    public var env: [String] = []
    /// `user`, `uid`, `user:group` or `uid:gid`, looked up in the container's /etc/passwd;
    /// empty for the container's own user.
    public var user = ""
    public var workingDir = ""
    public var privileged = false
    public var tty = false
    public var attachStdin = false
    public var attachStdout = false
    public var attachStderr = false
    /// Docker's syntax (`ctrl-p,ctrl-q`); empty for the default. Checked by the API layer.
    public var detachKeys = ""
    public var consoleSize: TerminalSize?

    public init(cmd: [String]) { self.cmd = cmd }
}

public struct TerminalSize: Sendable, Equatable {
    public var rows: UInt16
    public var columns: UInt16
    public init(rows: UInt16, columns: UInt16) { self.rows = rows; self.columns = columns }
}

/// An exec instance, kept in memory (as dockerd does) until its container is removed.
public struct ExecInstance: Sendable {
    public let id: String
    public let containerID: String
    public var config: ExecConfig
    public var running = false
    /// nil until the process has exited; 126 when it could not be started (Docker's code).
    public var exitCode: Int32?
    /// The process's pid on the host, once started.
    public var pid: Int32 = 0
    var session: ExecSession?
}

extension Engine {
    // MARK: Exec instances

    public func createExec(_ ref: String, _ config: ExecConfig) throws(EngineError) -> String {
        let containerID = try resolve(ref)
        let rec = containers[containerID]!
        try Self.requireExecutable(rec)
        guard !config.cmd.isEmpty else { throw EngineError(.invalidArgument, "No exec command specified") }
        // Instances of removed containers go here rather than in every removal path.
        execs = execs.filter { containers[$0.value.containerID] != nil }
        var id = Self.randomID()
        while execs[id] != nil { id = Self.randomID() }
        execs[id] = ExecInstance(id: id, containerID: containerID, config: config)
        publish(container: rec, "exec_create: " + config.cmd.joined(separator: " "), extra: ["execID": id])
        return id
    }

    /// dockerd's checks and wording (`getActiveContainer`): paused first, since paused is running.
    static func requireExecutable(_ rec: ContainerRecord) throws(EngineError) {
        if rec.status == .paused {
            throw EngineError(.conflict, "Container \(rec.id) is paused, unpause the container before exec")
        }
        guard rec.running else { throw EngineError(.conflict, "container \(rec.id) is not running") }
    }

    public func execInstance(_ id: String) throws(EngineError) -> ExecInstance {
        guard var exec = execs[id] else { throw EngineError(.notFound, "No such exec instance: \(id)") }
        // The runtime writes the pid file once the process runs; read it when first asked.
        if exec.running, exec.pid == 0,
           let pid = (try? FileSystem.readString(execFile(id, "pid"))).flatMap({ Int32(Self.trimmed($0)) }) {
            exec.pid = pid
            execs[id] = exec
        }
        return exec
    }

    /// IDs of a container's running execs, as inspect's `ExecIDs` (dockerd drops exited ones).
    public func execIDs(_ containerID: String) -> [String] {
        execs.values.filter { $0.containerID == containerID && $0.running }.map(\.id).sorted()
    }

    /// Starts the exec's process. Without `detach` the caller pumps the session's streams;
    /// with it the output is discarded. The exit is recorded before `session.recorded()` returns.
    /// As in dockerd, a failure once the exec is under way (the container stopped, an unknown
    /// user, a command that cannot run) leaves it exited with 126.
    public func startExec(_ id: String, detach: Bool, consoleSize: TerminalSize?) async throws(EngineError) -> ExecSession {
        guard var exec = execs[id] else { throw EngineError(.notFound, "No such exec instance: \(id)") }
        if exec.running { throw EngineError(.conflict, "Error: Exec command \(id) is already running") }
        if exec.exitCode != nil { throw EngineError(.conflict, "Error: Exec command \(id) has already run") }
        if let consoleSize { exec.config.consoleSize = consoleSize }
        exec.running = true
        execs[id] = exec
        let session: ExecSession
        do throws(EngineError) {
            guard let rec = containers[exec.containerID] else {
                throw EngineError(.notFound, "No such container: \(exec.containerID)")
            }
            publish(container: rec, "exec_start: " + exec.config.cmd.joined(separator: " "), extra: ["execID": id])
            try Self.requireExecutable(rec)
            let process = try execProcess(exec.config, container: rec)
            let processFile = execFile(id, "json")
            do {
                try FileSystem.writeAtomically(processFile, try JSONEncoder().encode(process), mode: 0o600)
            } catch {
                throw EngineError(.system, "writing the exec's process.json: \(error)")
            }
            let args = ["--root", root + "/runtime", "exec", "--process", processFile, "--pid-file", execFile(id, "pid")]
            session = try await ExecSession.launch(
                runtime: runtimePath, arguments: args, containerID: rec.id, tty: exec.config.tty,
                stdin: exec.config.attachStdin && !detach, output: !detach, socketDirectory: root + "/tmp",
                socketName: "exec-\(id.prefix(16)).sock")
        } catch {
            execExited(id, status: 126 << 8)
            throw error
        }
        execs[id]?.session = session
        Task {
            let status = await session.waitExit()
            self.execExited(id, status: status)
            session.markRecorded()
        }
        if detach { session.drainInBackground() }
        return session
    }

    func execExited(_ id: String, status: Int32) {
        guard var exec = execs[id] else { return }
        let pid = (try? FileSystem.readString(execFile(id, "pid"))).flatMap { Int32(Self.trimmed($0)) }
        // The runtime fails with 1 when the process could not start; dockerd says 126 then.
        let code = pid == nil ? 126 : berth_exit_code(status)
        exec.pid = pid ?? 0
        exec.running = false
        exec.exitCode = Int32(code)
        exec.session = nil
        execs[id] = exec
        unlink(execFile(id, "json"))
        unlink(execFile(id, "pid"))
        if let rec = containers[exec.containerID] {
            publish(container: rec, "exec_die", extra: ["execID": id, "exitCode": String(code)])
        }
    }

    /// Sets the exec's terminal size. An exec that has already exited is left alone: the
    /// docker CLI resizes right after starting and a short command may be gone by then.
    public func resizeExec(_ id: String, _ size: TerminalSize) throws(EngineError) {
        guard let exec = execs[id] else { throw EngineError(.notFound, "No such exec instance: \(id)") }
        exec.session?.resize(size)
    }

    func execFile(_ id: String, _ suffix: String) -> String { root + "/tmp/exec-\(id).\(suffix)" }

    /// The exec's process: the container's (user, capabilities, rlimits, env, cwd) with the
    /// exec's command and overrides, as dockerd builds it.
    func execProcess(_ config: ExecConfig, container rec: ContainerRecord) throws(EngineError) -> BerthOCI.Process {
        let spec: Spec
        do {
            spec = try JSONDecoder().decode(Spec.self, from: Data(try FileSystem.readBytes(dir(rec.id) + "/bundle/config.json")))
        } catch {
            throw EngineError(.system, "reading the container's config.json: \(error)")
        }
        guard var p = spec.process else { throw EngineError(.system, "container \(rec.id) has no process") }
        p.args = config.cmd
        p.terminal = config.tty
        p.consoleSize = config.tty ? config.consoleSize.map { Box(height: UInt($0.rows), width: UInt($0.columns)) } : nil
        var env = p.env ?? []
        if config.tty, !env.contains(where: { $0.hasPrefix("TERM=") }) { env.append("TERM=xterm") }
        for entry in config.env { SpecBuilder.replaceOrAppend(&env, entry) }
        p.env = env
        if !config.workingDir.isEmpty { p.cwd = config.workingDir }
        if !config.user.isEmpty {
            let users = UserDatabase(rootfs: rootfs(rec.id))
            try users.checkNamesResolvable(config.user, groupAdd: rec.hostConfig.groupAdd ?? [])
            let lookups = SpecBuilder.Lookups(user: { users.user($0) }, group: { users.group($0) })
            p.user = try SpecBuilder.user(config.user, groupAdd: rec.hostConfig.groupAdd ?? [], lookups: lookups)
        }
        if config.privileged {
            let all = SpecBuilder.allCapabilities
            p.capabilities = Capabilities(bounding: all, effective: all, permitted: all)
        }
        p.apparmorProfile = nil
        return p
    }
}

/// A started exec: the runtime running it in the foreground (its exit status is the exec's)
/// and our ends of its stdio: pipes, or with a TTY the pty master received on a console socket.
/// Reads and writes run on dispatch threads.
public final class ExecSession: Sendable {
    public let tty: Bool
    let pid: pid_t
    /// Where the client's stdin goes: the pipe to the process or the pty master; -1 for none.
    let input: Int32
    /// Docker stream number and fd: stdout and stderr pipes; with a TTY the master (1) and the
    /// runtime's own stderr (2), which carries its error when the process cannot start.
    public let outputs: [Output]
    let master: Int32
    private let state: Mutex<State>

    public struct Output: Sendable {
        public let stream: UInt8
        let fd: Int32
    }

    private struct State {
        var status: Int32?
        var exitedAt: Double?
        var inputClosed = false
        var recorded = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private init(tty: Bool, pid: pid_t, input: Int32, outputs: [Output], master: Int32, status: Int32?) {
        self.tty = tty
        self.pid = pid
        self.input = input
        self.outputs = outputs
        self.master = master
        state = Mutex(State(status: status, exitedAt: status == nil ? nil : monotonicSeconds()))
    }

    deinit {
        let inputClosed = state.withLock { $0.inputClosed }
        if input >= 0, input != master, !inputClosed { close(input) }
        for output in outputs { close(output.fd) }
    }

    public var acceptsInput: Bool { input >= 0 }

    // MARK: Launch

    static func launch(runtime: String, arguments: [String], containerID: String, tty: Bool, stdin: Bool,
                       output: Bool, socketDirectory: String, socketName: String) async throws(EngineError) -> ExecSession {
        let result = await withCheckedContinuation { (done: CheckedContinuation<Result<ExecSession, EngineError>, Never>) in
            DispatchQueue.global().async {
                done.resume(returning: Result { () throws(EngineError) in
                    try launchBlocking(runtime: runtime, arguments: arguments, containerID: containerID, tty: tty,
                                       stdin: stdin, output: output, socketDirectory: socketDirectory, socketName: socketName)
                })
            }
        }
        return try result.get()
    }

    private static func launchBlocking(runtime: String, arguments: [String], containerID: String, tty: Bool, stdin: Bool,
                                       output: Bool, socketDirectory: String, socketName: String) throws(EngineError) -> ExecSession {
        let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
        guard devNull >= 0 else { throw EngineError(.system, SystemError("open /dev/null").message) }
        var childEnds: [Int32] = []
        defer {
            close(devNull)
            for fd in childEnds { close(fd) }
        }
        func pipe() throws(EngineError) -> (read: Int32, write: Int32) {
            var fds: [Int32] = [-1, -1]
            guard berth_pipe_cloexec(&fds) == 0 else { throw EngineError(.system, SystemError("pipe").message) }
            return (fds[0], fds[1])
        }
        var stdio = [devNull, devNull, devNull]
        var input: Int32 = -1
        var outputs: [Output] = []
        var args = arguments
        var console: ConsoleListener?
        do throws(EngineError) {
            if tty {
                let listener = try ConsoleListener(directory: socketDirectory, name: socketName)
                console = listener
                args += ["--console-socket", listener.pathForOthers]
                let err = try pipe()
                childEnds.append(err.write)
                stdio[2] = err.write
                outputs.append(Output(stream: 2, fd: err.read))
            } else {
                if stdin {
                    let p = try pipe()
                    childEnds.append(p.read)
                    stdio[0] = p.read
                    input = p.write
                }
                if output {
                    for stream in [UInt8(1), 2] {
                        let p = try pipe()
                        childEnds.append(p.write)
                        stdio[Int(stream)] = p.write
                        outputs.append(Output(stream: stream, fd: p.read))
                    }
                }
            }
        } catch {
            if input >= 0 { close(input) }
            for o in outputs { close(o.fd) }
            throw error
        }
        let pid: pid_t
        do {
            pid = try HelperProcess.spawn(runtime, args + [containerID], stdio: stdio)
        } catch {
            if input >= 0 { close(input) }
            for o in outputs { close(o.fd) }
            throw error
        }
        for fd in childEnds { close(fd) }
        childEnds = []
        var status: Int32?
        var master: Int32 = -1
        if let console {
            (master, status) = console.receiveTerminal(from: pid)
            if master >= 0 {
                outputs.insert(Output(stream: 1, fd: master), at: 0)
                if stdin { input = master }
            }
        }
        return ExecSession(tty: tty, pid: pid, input: input, outputs: outputs, master: master, status: status)
    }

    // MARK: I/O

    /// The next bytes of an output; nil at its end (EIO for a pty whose last user closed it),
    /// or 2 s after the process exited when something it left behind still holds it open.
    public func read(_ output: Output) async -> [UInt8]? {
        await withCheckedContinuation { (done: CheckedContinuation<[UInt8]?, Never>) in
            DispatchQueue.global().async { done.resume(returning: self.readBlocking(output.fd)) }
        }
    }

    private func readBlocking(_ fd: Int32) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 32768)
        while true {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, 200)
            if ready < 0 && errno != EINTR { return nil }
            if ready > 0 {
                let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                if n > 0 { return Array(buffer[0..<n]) }
                if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                return nil
            }
            if let exitedAt = state.withLock({ $0.exitedAt }), monotonicSeconds() - exitedAt > 2 { return nil }
        }
    }

    /// Sends the client's bytes to the process's stdin; dropped once it is gone.
    public func write(_ bytes: [UInt8]) async {
        guard input >= 0, !state.withLock({ $0.inputClosed }) else { return }
        let fd = input
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                var off = 0
                while off < bytes.count {
                    let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) }
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }
                    off += n
                }
                done.resume()
            }
        }
    }

    /// Ends the process's stdin (the client half-closed). A terminal has no separate input to
    /// end, as with dockerd: the client sends ^D.
    public func closeInput() {
        guard !tty, input >= 0 else { return }
        let close = state.withLock { s -> Bool in
            defer { s.inputClosed = true }
            return !s.inputClosed
        }
        if close { Glibc.close(input) }
    }

    func resize(_ size: TerminalSize) {
        if master >= 0 { _ = berth_set_winsize(master, size.rows, size.columns) }
    }

    /// Reads and drops the output, so a detached process never blocks on a full pipe or pty.
    func drainInBackground() {
        for output in outputs {
            Task.detached { while await self.read(output) != nil {} }
        }
    }

    // MARK: Exit

    /// The runtime's wait status. Called once, by the engine.
    func waitExit() async -> Int32 {
        if let status = state.withLock({ $0.status }) { return status }
        let pid = self.pid
        let status = await withCheckedContinuation { (done: CheckedContinuation<Int32, Never>) in
            DispatchQueue.global().async {
                var status: Int32 = 0
                _ = berth_waitpid(pid, &status, 0)
                done.resume(returning: status)
            }
        }
        state.withLock {
            $0.status = status
            $0.exitedAt = monotonicSeconds()
        }
        return status
    }

    func markRecorded() {
        let waiters = state.withLock { s in
            s.recorded = true
            defer { s.waiters = [] }
            return s.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the engine has recorded the exit code, so an inspect that follows the end
    /// of the stream (the docker CLI's) sees it.
    public func recorded() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.recorded { return true }
                s.waiters.append(done)
                return false
            }
            if now { done.resume() }
        }
    }
}

/// The unix socket on which the runtime hands over the pty master (runc's --console-socket).
/// Bound through an O_PATH descriptor of its directory, so a long data root does not overflow
/// sun_path: the runtime reaches it as /proc/<berthd>/fd/<N>/<name>.
private final class ConsoleListener {
    let fd: Int32
    let directoryFD: Int32
    let name: String
    let pathForOthers: String

    init(directory: String, name: String) throws(EngineError) {
        directoryFD = open(directory, FileSystem.pathOnly | O_DIRECTORY | O_CLOEXEC)
        guard directoryFD >= 0 else { throw EngineError(.system, SystemError("open \(directory)").message) }
        self.name = name
        pathForOthers = "/proc/\(getpid())/fd/\(directoryFD)/\(name)"
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            let e = SystemError("socket")
            close(directoryFD)
            throw EngineError(.system, e.message)
        }
        let ownPath = "/proc/self/fd/\(directoryFD)/\(name)"
        unlink(ownPath)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(ownPath.utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(fd, 1) == 0 else {
            let e = SystemError("listen on \(directory)/\(name)")
            close(fd)
            close(directoryFD)
            throw EngineError(.system, e.message)
        }
    }

    deinit {
        unlink("/proc/self/fd/\(directoryFD)/\(name)")
        close(fd)
        close(directoryFD)
    }

    /// Waits for the runtime to connect and send the master; returns it, or -1 and the
    /// runtime's wait status when it exited first (it failed before making the terminal).
    func receiveTerminal(from pid: pid_t) -> (master: Int32, status: Int32?) {
        while true {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, 50) > 0 {
                // Glibc's module has no accept4; the window before FD_CLOEXEC only matters to a
                // helper spawned in it, which would hold a socket the runtime has already used.
                let connection = accept(fd, nil, nil)
                if connection >= 0 {
                    _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
                    let master = berth_recv_fd(connection)
                    close(connection)
                    return (master, nil)
                }
            }
            var status: Int32 = 0
            if berth_waitpid(pid, &status, WNOHANG) == pid { return (-1, status) }
        }
    }
}


extension AttachConnection {
    /// Ends what `read()` returns (a blocked read returns nil) while the monitor keeps the
    /// container's stdin for the next client: how a client detaches.
    public func stopReading() { shutdown(fd, Int32(SHUT_RD)) }
}
