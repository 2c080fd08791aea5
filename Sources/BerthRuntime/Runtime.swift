import BerthCgroups
import BerthOCI
import BerthOS
import CBerthSys
import FoundationEssentials
import Glibc

/// The OCI runtime: turns bundles into containers and drives their lifecycle
/// (runtime-spec runtime.md). Knows nothing of images, networks or HTTP.
public struct Runtime {
    let store: ContainerStore

    public init(root: String) {
        store = ContainerStore(root: root)
    }

    public struct CreateOptions {
        public var bundle: String
        public var pidFile: String?
        public var consoleSocket: String?
        public var preserveFDs: Int = 0
        /// From `reservePreservedFDs`: which of them the caller left closed.
        public var preservePlaceholders: UInt64 = 0
        public var noPivot = false
        public init(bundle: String) { self.bundle = bundle }
    }

    // MARK: create / start / run

    /// `create`: the container exists, its process waits on the exec fifo for `start`.
    public func create(id: String, _ options: CreateOptions) throws(RuntimeError) {
        _ = try launch(id: id, options, waitForStart: true)
    }

    /// `run`: create and start; unless detached, wait for the process, delete the container
    /// and return the process's exit code.
    public func run(id: String, _ options: CreateOptions, detach: Bool) throws(RuntimeError) -> Int32 {
        if detach {
            try create(id: id, options)
            try start(id: id)
            return 0
        }
        // We wait for the process ourselves: orphans of a pid-namespace fork come back to us.
        _ = berth_set_subreaper()
        // Used only if the process asks for a terminal (launch decides, having read the spec).
        let console = try ForegroundConsole(needed: options.consoleSocket == nil)
        let record = try launch(id: id, options, waitForStart: false, consoleFD: console?.childEnd)
        runHooks(record.poststart, state(of: record, .running), stage: "poststart", fatal: false)
        let status = record.terminal ? console!.proxy(to: record.pid) : waitForeground(record.pid)
        try? delete(id: id, force: true)
        return berth_exit_code(status)
    }

    private func launch(id: String, _ options: CreateOptions, waitForStart: Bool,
                        consoleFD: Int32? = nil) throws(RuntimeError) -> ContainerRecord {
        try ContainerStore.validate(id: id)
        let bundle = FileSystem.absolute(options.bundle)
        let (spec, specBytes) = try loadSpec(bundle: bundle)
        let cgroup: any Cgroup
        do { cgroup = try Cgroups.open(cgroupsPath: spec.linux?.cgroupsPath, containerID: id) } catch {
            throw RuntimeError(.invalidArgument, "linux.cgroupsPath: \(error.message)")
        }
        let plan = try ContainerPlan(spec: spec, bundle: bundle, cgroupViews: cgroupViews(cgroup))

        // From here on, everything made is undone if a later step fails.
        try store.claim(id)
        // Recorded before anything is made and again once the process exists, so that if this
        // command is killed half-way, `delete --force` finds what to clean up.
        var record = ContainerRecord(id: id, bundle: bundle, rootfs: plan.rootfs, pid: 0, startTime: 0,
                                     created: Timestamp.now(), owner: String(getuid()), ociVersion: spec.ociVersion,
                                     annotations: spec.annotations, cgroupsPath: spec.linux?.cgroupsPath,
                                     terminal: plan.process.terminal, poststart: spec.hooks?.poststart,
                                     poststop: spec.hooks?.poststop)
        var child = berth_child(pid: -1, sync_fd: -1, helper: 0)
        var openFDs: [Int32] = []
        var cgroupMade = false
        var succeeded = false
        defer {
            for fd in openFDs { close(fd) }
            if !succeeded {
                if child.pid > 0 { berth_spawn_abort(&child) }
                if cgroupMade { try? cgroup.destroy() }
                store.remove(id)
            }
        }
        try store.save(record)
        do {
            try cgroup.create()
            cgroupMade = true
            try cgroup.apply(plan.effectiveResources)
        } catch {
            throw RuntimeError(.system, "linux.resources: \(error.message)")
        }

        let arena = Arena()
        var c = berth_plan()
        plan.fill(&c, arena: arena)
        c.no_pivot = options.noPivot ? 1 : 0
        c.preserve_fds = Int32(options.preserveFDs)
        c.preserve_placeholders = options.preservePlaceholders
        c.stdio_fds = (-1, -1, -1)
        c.exec_fifo_fd = -1
        if waitForStart {
            let fifo = store.fifoPath(id)
            // Writable by the container's user whoever that is (chmod: the umask would narrow it).
            guard mkfifo(fifo, 0o622) == 0, chmod(fifo, 0o622) == 0 else {
                throw RuntimeError(.system, "mkfifo \(fifo): \(errnoText())")
            }
            let fd = open(fifo, oPath | O_CLOEXEC)
            guard fd >= 0 else { throw RuntimeError(.system, "open \(fifo): \(errnoText())") }
            openFDs.append(fd)
            c.exec_fifo_fd = fd
        }
        c.console_socket = -1
        if plan.process.terminal, let consoleFD {
            c.console_socket = consoleFD
        } else if plan.process.terminal {
            guard let socket = options.consoleSocket else {
                throw RuntimeError(.invalidArgument, "process.terminal is true: a --console-socket is needed to hand over the terminal")
            }
            let fd = berth_connect_unix(socket)
            guard fd >= 0 else { throw RuntimeError(.invalidArgument, "--console-socket \(socket): \(errnoText())") }
            openFDs.append(fd)
            c.console_socket = fd
        }
        let cgroupFD = fillCgroupJoin(&c, cgroup, arena: arena)
        if cgroupFD >= 0 { openFDs.append(cgroupFD) }
        let joins = try plan.namespaces.openJoins()
        openFDs.append(contentsOf: joins.map { $0.fd })
        c.joins = arena.array(joins)
        c.n_joins = Int32(joins.count)

        let hooks = spec.hooks
        c.create_container_hooks = arena.array(cHooks(hooks?.createContainer, arena))
        c.n_create_container_hooks = Int32(hooks?.createContainer?.count ?? 0)
        c.start_container_hooks = arena.array(cHooks(hooks?.startContainer, arena))
        c.n_start_container_hooks = Int32(hooks?.startContainer?.count ?? 0)

        var err = [CChar](repeating: 0, count: Int(BERTH_ERR_MAX))
        guard berth_spawn_begin(&c, &child, &err) == 0 else {
            throw RuntimeError(.system, "container init: " + cText(err))
        }
        record.pid = child.pid
        record.startTime = ProcFS.stat(record.pid)?.startTime ?? 0
        try store.save(record)
        // prestart (deprecated) and createRuntime run in the runtime's namespaces, after the
        // container's namespaces exist and before pivot_root (runtime-spec config.md, "POSIX-platform Hooks").
        let creating = state(of: record, .creating)
        try runHooksOrFail(hooks?.prestart, creating, stage: "prestart")
        try runHooksOrFail(hooks?.createRuntime, creating, stage: "createRuntime")
        let inContainerHooks = !(hooks?.createContainer ?? []).isEmpty || !(hooks?.startContainer ?? []).isEmpty
        guard berth_spawn_finish(&child, inContainerHooks ? stateJSON(creating) : nil,
                                 inContainerHooks ? stateJSON(state(of: record, .created)) : nil, &err) == 0 else {
            throw RuntimeError(.system, "container init: " + cText(err))
        }
        try store.saveConfig(specBytes, id: id)
        if let pidFile = options.pidFile { try writePidFile(pidFile, record.pid) }
        succeeded = true
        Log.debug("\(waitForStart ? "created" : "started") container \(id): pid \(record.pid), \(plan.steps.count) mount steps, "
                  + "\(plan.devices.count) devices, namespaces \(plan.namespaces.create.map(\.rawValue).sorted().joined(separator: ","))")
        return record
    }

    /// `start`: releases the process blocked on the exec fifo, then runs poststart hooks.
    public func start(id: String) throws(RuntimeError) {
        let record = try store.load(id)
        let status = self.status(of: record)
        guard status == .created else {
            if status == .stopped { throw RuntimeError(.invalidState, "cannot start a container that has stopped") }
            throw RuntimeError(.invalidState, "cannot start container \"\(id)\": it is \(status.rawValue), not created")
        }
        let fifo = store.fifoPath(id)
        let fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw RuntimeError(.system, "open \(fifo): \(errnoText())") }
        defer { close(fd) }
        var byte: UInt8 = 0
        while true {
            let n = read(fd, &byte, 1)
            if n == 1 { break }
            if n < 0 && errno != EAGAIN && errno != EINTR { throw RuntimeError(.system, "reading \(fifo): \(errnoText())") }
            guard ProcFS.isAlive(record.pid, startTime: record.startTime) else {
                throw RuntimeError(.invalidState, "container \"\(id)\" exited before it was started")
            }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&p, 1, 10)
        }
        unlink(fifo)
        Log.debug("released container \(id) (pid \(record.pid))")
        // Released: what follows is end of file when execve succeeded (the child's end is
        // close-on-exec), or the reason it did not (a startContainer hook, the exec itself).
        _ = fcntl(fd, F_SETFL, 0)
        let failure: [UInt8]
        do { failure = try FileSystem.readToEnd(fd, what: fifo) } catch { throw RuntimeError(.system, error.message) }
        if failure.first == UInt8(ascii: "E") {
            var text = String(decoding: failure.dropFirst(), as: UTF8.self)
            if let r = text.ranges(of: ": errno ").last, let e = Int32(text[r.upperBound...]) {
                text = text[..<r.lowerBound] + ": " + String(cString: strerror(e))
            }
            throw RuntimeError(.system, "container \"\(id)\": \(text)")
        }
        runHooks(record.poststart, state(of: record, .running), stage: "poststart", fatal: false)
    }

    // MARK: state

    public func state(id: String) throws(RuntimeError) -> StateReport {
        let record = try store.load(id)
        return report(record)
    }

    public func list() -> [StateReport] {
        store.ids().compactMap { try? store.load($0) }.map(report)
    }

    func report(_ record: ContainerRecord) -> StateReport {
        let status = self.status(of: record)
        return StateReport(ociVersion: record.ociVersion, id: record.id, pid: status == .stopped ? 0 : record.pid,
                           status: status.rawValue, bundle: record.bundle, rootfs: record.rootfs,
                           created: record.created, owner: record.owner, annotations: record.annotations)
    }

    func status(of record: ContainerRecord) -> State.Status {
        guard ProcFS.isAlive(record.pid, startTime: record.startTime) else { return .stopped }
        if FileSystem.exists(store.fifoPath(record.id)) { return .created }
        if let cg = try? openCgroup(record), cg.isFrozen() { return .paused }
        return .running
    }

    func state(of record: ContainerRecord, _ status: State.Status) -> State {
        State(ociVersion: record.ociVersion, id: record.id, status: status,
              pid: record.pid > 0 ? record.pid : nil, bundle: record.bundle, annotations: record.annotations)
    }

    // MARK: kill / delete

    public func kill(id: String, signal: Int32, all: Bool) throws(RuntimeError) {
        let record = try store.load(id)
        let status = self.status(of: record)
        guard status != .stopped else { throw RuntimeError(.invalidState, "container \"\(id)\" is not running") }
        if all {
            let cg = try openCgroup(record)
            let pids: [Int32]
            do { pids = try cg.pids() } catch { throw RuntimeError(.system, "listing processes: \(error.message)") }
            for pid in pids { Glibc.kill(pid, signal) }
            // Stopped tasks in a frozen cgroup would not see the signal before thawing.
            if status == .paused && (signal == SIGKILL || signal == SIGTERM) { try? cg.thaw() }
        } else if Glibc.kill(record.pid, signal) != 0 {
            throw RuntimeError(.system, "kill \(record.pid): \(errnoText())")
        }
    }

    public func delete(id: String, force: Bool) throws(RuntimeError) {
        let record: ContainerRecord
        do { record = try store.load(id) } catch {
            // As runc: forcing the deletion of what is not there is done, so cleanups can repeat.
            if force && error.code == .notFound { return }
            throw error
        }
        let status = self.status(of: record)
        let cg = try? openCgroup(record)
        switch status {
        case .stopped:
            break
        case .created:
            // Never started: nothing of the user's ran, so delete needs no --force (as runc).
            try killAndWait(record, cg)
        case .running, .paused, .creating:
            guard force else {
                throw RuntimeError(.invalidState, "cannot delete container \"\(id)\" that is not stopped: \(status.rawValue)")
            }
            try killAndWait(record, cg)
        }
        if let cg { try? cg.destroy() }
        store.remove(id)
        Log.debug("deleted container \(id) (was \(status.rawValue))")
        runHooks(record.poststop, state(of: record, .stopped), stage: "poststop", fatal: false)
    }

    private func killAndWait(_ record: ContainerRecord, _ cg: (any Cgroup)?) throws(RuntimeError) {
        if let cg {
            let pids = (try? cg.pids()) ?? []
            for pid in pids { Glibc.kill(pid, SIGKILL) }
            try? cg.thaw()
        }
        Glibc.kill(record.pid, SIGKILL)
        let deadline = monotonicSeconds() + 10
        while ProcFS.isAlive(record.pid, startTime: record.startTime) || !((try? cg?.pids()) ?? []).isEmpty {
            // Our own child (run, or a create in this process) must be reaped here.
            var st: Int32 = 0
            _ = berth_waitpid(record.pid, &st, WNOHANG)
            if monotonicSeconds() > deadline {
                throw RuntimeError(.system, "container \"\(record.id)\" did not die within 10s of SIGKILL")
            }
            usleep(1000)
        }
    }

    // MARK: pause / resume / ps / update

    public func pause(id: String) throws(RuntimeError) {
        let record = try store.load(id)
        let status = self.status(of: record)
        guard status == .running || status == .created else {
            throw RuntimeError(.invalidState, "cannot pause container \"\(id)\": it is \(status.rawValue)")
        }
        do { try openCgroup(record).freeze() } catch let e as RuntimeError { throw e } catch {
            throw RuntimeError(.system, "freezing: \(error)")
        }
    }

    public func resume(id: String) throws(RuntimeError) {
        let record = try store.load(id)
        guard status(of: record) == .paused else {
            throw RuntimeError(.invalidState, "cannot resume container \"\(id)\": it is not paused")
        }
        do { try openCgroup(record).thaw() } catch let e as RuntimeError { throw e } catch {
            throw RuntimeError(.system, "thawing: \(error)")
        }
    }

    public func processes(id: String) throws(RuntimeError) -> [Int32] {
        let record = try store.load(id)
        do { return try openCgroup(record).pids().sorted() } catch let e as RuntimeError { throw e } catch {
            throw RuntimeError(.system, "listing processes: \(error)")
        }
    }

    public func update(id: String, resources: Resources) throws(RuntimeError) {
        let record = try store.load(id)
        guard status(of: record) != .stopped else { throw RuntimeError(.invalidState, "container \"\(id)\" is not running") }
        do { try openCgroup(record).apply(resources) } catch let e as RuntimeError { throw e } catch {
            throw RuntimeError(.system, "linux.resources: \(error)")
        }
        // Later updates and `exec` see the limits in force.
        var config = try store.config(id)
        if config.linux == nil { config.linux = Linux() }
        config.linux?.resources = resources
        do { try store.saveConfig(JSONEncoder().encode(config), id: id) } catch let e as RuntimeError { throw e } catch {
            throw RuntimeError(.system, "saving config of \(id): \(error)")
        }
    }

    // MARK: helpers

    /// `--preserve-fds N` hands the caller's fds 3..3+N-1 to the container. Those the caller did
    /// not open must not be taken by the runtime's own files and leak in: each gets a
    /// close-on-exec placeholder, to be called before anything else opens a file. Returns
    /// the placeholders' bits (bit i: fd 3+i).
    public static func reservePreservedFDs(_ count: Int) -> UInt64 {
        var mask: UInt64 = 0
        for fd in 3..<(3 + Int32(min(max(count, 0), 64))) where fcntl(fd, F_GETFD) < 0 {
            let placeholder = open("/dev/null", O_RDONLY | O_CLOEXEC)
            if placeholder != fd && placeholder >= 0 {
                _ = dup2(placeholder, fd)
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                close(placeholder)
            }
            mask |= 1 << UInt64(fd - 3)
        }
        return mask
    }

    /// Tells the child how to join its cgroup (see berth_spawn.h); returns the fd to close.
    func fillCgroupJoin(_ c: inout berth_plan, _ cgroup: any Cgroup, arena: Arena) -> Int32 {
        let dirs = cgroup.directories
        let tasks = dirs.filter { $0.key != "unified" }.map { $0.value + "/tasks" }.sorted()
        c.cgroup_tasks = arena.constStrings(tasks)
        c.n_cgroup_tasks = Int32(tasks.count)
        c.cgroup2_fd = -1
        guard let v2 = dirs["unified"] else { return -1 }
        c.cgroup2_fd = open(v2, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        c.cgroup2_procs = arena.string(v2 + "/cgroup.procs")
        return c.cgroup2_fd
    }

    func openCgroup(_ record: ContainerRecord) throws(RuntimeError) -> any Cgroup {
        do { return try Cgroups.open(cgroupsPath: record.cgroupsPath, containerID: record.id) } catch {
            throw RuntimeError(.system, "cgroup of \(record.id): \(error.message)")
        }
    }

    /// The bundle's config.json, decoded, and its bytes (kept as the container's config).
    func loadSpec(bundle: String) throws(RuntimeError) -> (Spec, Data) {
        let path = bundle + "/config.json"
        guard FileSystem.isDirectory(bundle) else { throw RuntimeError(.invalidArgument, "bundle \(bundle) is not a directory") }
        let data: Data
        do { data = try FileSystem.readData(path) } catch { throw RuntimeError(.invalidArgument, "cannot read \(path): \(error)") }
        do { return (try JSONDecoder().decode(Spec.self, from: data), data) } catch let e as DecodingError {
            throw RuntimeError(.invalidArgument, "config.json: " + Self.describe(e))
        } catch {
            throw RuntimeError(.invalidArgument, "config.json: \(error)")
        }
    }

    public static func describe(_ e: DecodingError) -> String {
        func path(_ c: [CodingKey]) -> String {
            c.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().drop { $0 == "." }.description
        }
        switch e {
        case .keyNotFound(let key, let ctx):
            let p = path(ctx.codingPath + [key])
            return "\(p): is required"
        case .typeMismatch(let type, let ctx):
            return "\(path(ctx.codingPath)): expected \(type)"
        case .valueNotFound(let type, let ctx):
            return "\(path(ctx.codingPath)): expected \(type), found null"
        case .dataCorrupted(let ctx):
            let p = path(ctx.codingPath)
            let detail = ctx.underlyingError.map { "\($0)" } ?? ctx.debugDescription
            return p.isEmpty ? "malformed JSON: \(detail)" : "\(p): \(ctx.debugDescription)"
        @unknown default:
            return "\(e)"
        }
    }


    func writePidFile(_ path: String, _ pid: Int32) throws(RuntimeError) {
        do { try FileSystem.writeAtomically(FileSystem.absolute(path), Array(String(pid).utf8)) } catch {
            throw RuntimeError(.system, "--pid-file: \(error)")
        }
    }
}

/// What `state` and `list --format json` print: the OCI state plus runc's extra fields,
/// which containerd reads (`rootfs`, `created`, `owner`).
public struct StateReport: Codable, Sendable {
    public var ociVersion: String
    public var id: String
    public var pid: Int32
    public var status: String
    public var bundle: String
    public var rootfs: String
    public var created: String
    public var owner: String
    public var annotations: [String: String]?
}

func errnoText() -> String { String(cString: strerror(errno)) }

/// O_PATH from fcntl.h, hidden from Swift behind _GNU_SOURCE.
let oPath = BERTH_O_PATH

/// Text of a NUL-terminated C buffer.
func cText(_ buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}

func stateJSON(_ s: State) -> String {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return (try? e.encode(s)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
}
