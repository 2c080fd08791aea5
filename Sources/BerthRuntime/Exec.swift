import BerthCgroups
import BerthOCI
import BerthOS
import BerthSeccomp
import CBerthSys
import Glibc

extension Runtime {
    public struct ExecOptions {
        public var process: BerthOCI.Process
        public var detach = false
        public var pidFile: String?
        public var consoleSocket: String?
        public var preserveFDs = 0
        public var preservePlaceholders: UInt64 = 0
        public init(process: BerthOCI.Process) { self.process = process }
    }

    /// The process `exec` runs when given only arguments: the container's own settings
    /// (user, capabilities, rlimits, env) with those arguments, as runc does.
    public func defaultExecProcess(id: String) throws(RuntimeError) -> BerthOCI.Process {
        guard var p = try store.config(id).process else { throw RuntimeError(.invalidState, "container \"\(id)\" has no process") }
        p.terminal = false
        p.consoleSize = nil
        return p
    }

    /// `exec`: a new process in the container's namespaces and cgroup. Returns its exit code,
    /// or nil when detached.
    public func exec(id: String, _ options: ExecOptions) throws(RuntimeError) -> Int32? {
        let record = try store.load(id)
        let status = self.status(of: record)
        guard status == .running || status == .created else {
            throw RuntimeError(.invalidState, "cannot exec in a \(status.rawValue) container")
        }
        let settings = try ProcessSettings(options.process)
        let config = try store.config(id)
        let namespaces = try NamespacePlan(config.linux?.namespaces)
        // Join every namespace the container has, by the init process's handles.
        var joins: [berth_join] = []
        defer { for j in joins { close(j.fd) } }
        for kind in NamespaceKind.allCases where namespaces.has(kind) {
            let path = "/proc/\(record.pid)/ns/\(kind.procName)"
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw RuntimeError(.system, "opening \(path): \(errnoText())") }
            joins.append(berth_join(type: kind.cloneFlag, fd: fd))
        }
        let cgroup = try openCgroup(record)
        if !options.detach { _ = berth_set_subreaper() }

        let arena = Arena()
        var c = berth_plan()
        settings.fill(&c, arena: arena)
        c.joins = arena.array(joins)
        c.n_joins = Int32(joins.count)
        c.setup_rootfs = 0
        c.setsid = 1
        c.exec_fifo_fd = -1
        c.stdio_fds = (-1, -1, -1)
        c.preserve_fds = Int32(options.preserveFDs)
        c.preserve_placeholders = options.preservePlaceholders
        c.console_socket = -1
        var consoleFD: Int32 = -1
        defer { if consoleFD >= 0 { close(consoleFD) } }
        let foreground = try ForegroundConsole(needed: settings.terminal && options.consoleSocket == nil && !options.detach)
        if let foreground {
            c.console_socket = foreground.childEnd
        } else if settings.terminal {
            guard let socket = options.consoleSocket else {
                throw RuntimeError(.invalidArgument, "a terminal was asked for (-t): a --console-socket is needed to hand it over")
            }
            consoleFD = berth_connect_unix(socket)
            guard consoleFD >= 0 else { throw RuntimeError(.invalidArgument, "--console-socket \(socket): \(errnoText())") }
            c.console_socket = consoleFD
        }
        // The container's seccomp profile confines every process in it, exec'd ones too.
        if let s = config.linux?.seccomp {
            do {
                let filter = try SeccompCompiler.compile(s)
                c.seccomp_filter = arena.bytes(filter.instructions)
                c.seccomp_len = filter.instructions.count
                c.seccomp_flags = filter.flags
            } catch {
                throw RuntimeError(.invalidArgument, "linux.seccomp: \(error.description)")
            }
        }

        let cgroupFD = fillCgroupJoin(&c, cgroup, arena: arena)
        defer { if cgroupFD >= 0 { close(cgroupFD) } }
        var child = berth_child(pid: -1, sync_fd: -1, helper: 0)
        var err = [CChar](repeating: 0, count: Int(BERTH_ERR_MAX))
        guard berth_spawn_begin(&c, &child, &err) == 0 else {
            throw RuntimeError(.system, "exec: " + cText(err))
        }
        guard berth_spawn_finish(&child, nil, nil, &err) == 0 else {
            throw RuntimeError(.system, "exec: " + cText(err))
        }
        if let pidFile = options.pidFile { try writePidFile(pidFile, child.pid) }
        if options.detach { return nil }
        let waitStatus = foreground?.proxy(to: child.pid) ?? waitForeground(child.pid)
        return berth_exit_code(waitStatus)
    }
}
