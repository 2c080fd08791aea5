import BerthCgroups
import BerthOCI
import BerthOS
import FoundationEssentials
import Glibc

/// One reading of a container's cgroup counters, with the host figures `docker stats` needs to
/// turn them into percentages. Zero everywhere for a container that is not running.
public struct ContainerStatsSample: Sendable {
    /// /proc/net/dev's columns that Docker reports.
    public struct InterfaceCounters: Sendable, Equatable {
        public var rxBytes: UInt64, rxPackets: UInt64, rxErrors: UInt64, rxDropped: UInt64
        public var txBytes: UInt64, txPackets: UInt64, txErrors: UInt64, txDropped: UInt64
    }

    public struct BlockIO: Sendable {
        public var major: UInt64
        public var minor: UInt64
        public var op: String
        public var value: UInt64
    }

    public var id: String
    public var name: String
    /// When it was read (RFC 3339), Go's zero time when not running.
    public var read = ContainerRecord.zeroTime
    /// CPU time in nanoseconds: total, in kernel mode, in user mode, per CPU (cgroup v1 only).
    public var cpuTotal: UInt64 = 0
    public var cpuKernel: UInt64 = 0
    public var cpuUser: UInt64 = 0
    public var cpuPerCPU: [UInt64] = []
    public var throttlingPeriods: UInt64 = 0
    public var throttledPeriods: UInt64 = 0
    public var throttledTime: UInt64 = 0
    /// The host's busy and idle time in nanoseconds (/proc/stat), and its online CPUs.
    public var systemCPU: UInt64 = 0
    public var onlineCPUs: Int = 0
    public var memoryUsage: UInt64 = 0
    public var memoryMaxUsage: UInt64?
    /// The cgroup's limit, or the host's memory when unlimited (as dockerd reports it).
    public var memoryLimit: UInt64 = 0
    public var memoryFailcnt: UInt64?
    public var memoryStat: [String: UInt64] = [:]
    public var pidsCurrent: UInt64 = 0
    public var pidsLimit: UInt64?
    /// Per interface of the container's network namespace (loopback left out, as dockerd does).
    public var networks: [String: InterfaceCounters] = [:]
    public var ioServiceBytes: [BlockIO] = []
    public var ioServiced: [BlockIO] = []
}

extension Engine {
    // MARK: Pause

    public func pause(_ ref: String) async throws(EngineError) {
        let id = try resolve(ref)
        let rec = containers[id]!
        if rec.status == .paused { throw EngineError(.conflict, "Container \(id) is already paused") }
        guard rec.running else { throw EngineError(.conflict, "Container \(id) is not running") }
        let result = await runtime(["pause", id])
        guard result.succeeded else { throw EngineError(.system, Self.trimmed(result.output)) }
        // It may have exited while the runtime froze it.
        guard var now = containers[id], now.status == .running else { return }
        try now.transition(to: .paused)
        containers[id] = now
        try persist(now)
        publish(container: now, "pause")
    }

    public func unpause(_ ref: String) async throws(EngineError) {
        let id = try resolve(ref)
        guard containers[id]!.status == .paused else { throw EngineError(.conflict, "Container \(id) is not paused") }
        let result = await runtime(["resume", id])
        guard result.succeeded else { throw EngineError(.system, Self.trimmed(result.output)) }
        try markUnpaused(id)
    }

    /// After a signal to a paused container, dockerd thaws it so the signal is acted on (a
    /// frozen v1 cgroup holds even SIGKILL until thawed).
    func thawAfterSignal(_ id: String) async {
        guard containers[id]?.status == .paused else { return }
        if await runtime(["resume", id]).succeeded { try? markUnpaused(id) }
    }

    private func markUnpaused(_ id: String) throws(EngineError) {
        guard var rec = containers[id], rec.status == .paused else { return }
        try rec.transition(to: .running)
        containers[id] = rec
        try persist(rec)
        publish(container: rec, "unpause")
    }

    // MARK: Resize

    /// The container's terminal size, through its monitor. Without a TTY there is nothing to
    /// resize and, as containerd's shim, that is not an error.
    public func resize(_ ref: String, _ size: TerminalSize) async throws(EngineError) {
        let id = try resolve(ref)
        let rec = containers[id]!
        guard rec.running else { throw EngineError(.conflict, "Container \(id) is not running") }
        guard rec.config.tty == true else { return }
        let control = try AttachConnection(path: monitorDir(id) + "/ctl.sock")
        await control.write(Array("resize \(size.rows) \(size.columns)\n".utf8))
        let reply = String(decoding: await control.read() ?? [], as: UTF8.self)
        guard reply.hasPrefix("ok") else {
            throw EngineError(.system, "resizing the terminal: \(Self.trimmed(reply.isEmpty ? "no reply from the monitor" : reply))")
        }
    }

    // MARK: Top

    /// `ps` on the host (default `-ef`), keeping the rows of the container's processes.
    public func top(_ ref: String, psArgs: String) async throws(EngineError) -> (titles: [String], processes: [[String]]) {
        let id = try resolve(ref)
        guard containers[id]!.running else { throw EngineError(.conflict, "Container \(id) is not running") }
        let pids = Set(try cgroup(id).pidsOrFail())
        let args = psArgs.split(separator: " ").map(String.init)
        let result = await HelperProcess.run("/bin/ps", args.isEmpty ? ["-ef"] : args)
        guard result.succeeded else { throw EngineError(.system, "Error running ps: \(Self.trimmed(result.output))") }
        return try Self.parsePS(result.output, pids: pids)
    }

    /// dockerd's parsePSOutput: titles from the header, the last column takes what is left of
    /// a row (the command with its spaces), rows whose PID is not the container's are dropped.
    static func parsePS(_ output: String, pids: Set<Int32>) throws(EngineError) -> (titles: [String], processes: [[String]]) {
        let lines = output.split(separator: "\n")
        guard let header = lines.first else { throw EngineError(.system, "ps printed nothing") }
        let titles = header.split(separator: " ").map(String.init)
        guard let pidColumn = titles.firstIndex(of: "PID") else {
            throw EngineError(.system, "Couldn't find PID field in ps output")
        }
        var processes: [[String]] = []
        for line in lines.dropFirst() {
            var fields = line.split(separator: " ", maxSplits: titles.count - 1).map(String.init)
            guard fields.count > pidColumn, let pid = Int32(fields[pidColumn]), pids.contains(pid) else { continue }
            if let last = fields.last { fields[fields.count - 1] = Self.trimmed(last) }
            processes.append(fields)
        }
        return (titles, processes)
    }

    // MARK: Stats

    /// Parses /proc/net/dev: `name: rx-bytes packets errs drop fifo frame compressed multicast
    /// tx-bytes packets errs drop ...`.
    static func interfaceCounters(_ text: String) -> [String: ContainerStatsSample.InterfaceCounters] {
        var out: [String: ContainerStatsSample.InterfaceCounters] = [:]
        for line in text.split(separator: "\n").dropFirst(2) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = trimmed(String(line[..<colon]))
            let v = line[line.index(after: colon)...].split(separator: " ").compactMap { UInt64($0) }
            guard name != "lo", v.count >= 12 else { continue }
            out[name] = .init(rxBytes: v[0], rxPackets: v[1], rxErrors: v[2], rxDropped: v[3],
                              txBytes: v[8], txPackets: v[9], txErrors: v[10], txDropped: v[11])
        }
        return out
    }

    public func stats(_ ref: String) throws(EngineError) -> ContainerStatsSample {
        let id = try resolve(ref)
        let rec = containers[id]!
        var sample = ContainerStatsSample(id: id, name: rec.name)
        guard rec.running else { return sample }
        let group = try cgroup(id)
        let counters: CgroupStats
        do { counters = try group.stats() } catch { throw EngineError(.system, "reading the container's cgroup: \(error)") }
        sample.read = Timestamp.now()
        if let cpu = counters.cpu {
            sample.cpuTotal = cpu.usageTotal
            sample.cpuKernel = cpu.system
            sample.cpuUser = cpu.user
            sample.throttlingPeriods = cpu.periods
            sample.throttledPeriods = cpu.throttledPeriods
            sample.throttledTime = cpu.throttledTime
        }
        if let dir = group.directories.first(where: { $0.key.split(separator: ",").contains("cpuacct") })?.value,
           let text = try? FileSystem.readString(dir + "/cpuacct.usage_percpu") {
            sample.cpuPerCPU = text.split(separator: " ").compactMap { UInt64(Self.trimmed(String($0))) }
        }
        (sample.systemCPU, sample.onlineCPUs) = Self.hostCPU()
        if rec.pid > 0, rec.hostConfig.networkMode != "host", let text = try? FileSystem.readString("/proc/\(rec.pid)/net/dev") {
            sample.networks = Self.interfaceCounters(text)
        }
        let hostMemory = Self.hostMemory()
        if let memory = counters.memory {
            sample.memoryUsage = memory.usage
            sample.memoryMaxUsage = memory.maxUsage
            sample.memoryLimit = min(memory.limit ?? hostMemory, hostMemory)
            sample.memoryFailcnt = group.mode == .unified ? nil : memory.failcnt
            sample.memoryStat = memory.stat
        }
        if let pids = counters.pids {
            sample.pidsCurrent = pids.current
            sample.pidsLimit = pids.limit
        }
        if let dir = group.directories["blkio"] {
            sample.ioServiceBytes = Self.blkioV1(dir + "/blkio.throttle.io_service_bytes_recursive")
            sample.ioServiced = Self.blkioV1(dir + "/blkio.throttle.io_serviced_recursive")
        } else if group.mode == .unified, let dir = group.directories["unified"] {
            (sample.ioServiceBytes, sample.ioServiced) = Self.ioStatV2(dir + "/io.stat")
        }
        return sample
    }

    func cgroup(_ id: String) throws(EngineError) -> any Cgroup {
        let spec: Spec
        do {
            spec = try JSONDecoder().decode(Spec.self, from: Data(try FileSystem.readBytes(dir(id) + "/bundle/config.json")))
        } catch {
            throw EngineError(.system, "reading the container's config.json: \(error)")
        }
        do { return try Cgroups.open(cgroupsPath: spec.linux?.cgroupsPath, containerID: id) } catch {
            throw EngineError(.system, "opening the container's cgroup: \(error)")
        }
    }

    /// Busy plus idle time of all CPUs in nanoseconds, as dockerd's getSystemCPUUsage sums the
    /// first seven fields of /proc/stat's `cpu` line; and the online CPUs.
    static func hostCPU() -> (UInt64, Int) {
        let online = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        guard let text = try? FileSystem.readString("/proc/stat"),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") }) else { return (0, online) }
        let ticks = line.split(separator: " ").dropFirst().prefix(7).compactMap { UInt64($0) }.reduce(0, +)
        let perSecond = UInt64(max(sysconf(Int32(_SC_CLK_TCK)), 1))
        return (ticks * (1_000_000_000 / perSecond), online)
    }

    /// MemTotal from /proc/meminfo, in bytes.
    static func hostMemory() -> UInt64 {
        guard let text = try? FileSystem.readString("/proc/meminfo"),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("MemTotal:") }),
              let kib = line.split(separator: " ").dropFirst().first.flatMap({ UInt64($0) }) else { return 0 }
        return kib * 1024
    }

    /// v1 `blkio.throttle.*_recursive`: `8:0 Read 4096` lines and a `Total` line.
    static func blkioV1(_ path: String) -> [ContainerStatsSample.BlockIO] {
        guard let text = try? FileSystem.readString(path) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ")
            guard f.count == 3, let device = deviceNumbers(f[0]), let value = UInt64(f[2]) else { return nil }
            return .init(major: device.major, minor: device.minor, op: String(f[1]), value: value)
        }
    }

    /// v2 `io.stat`: `8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...`, as dockerd maps it to v1's shape.
    static func ioStatV2(_ path: String) -> ([ContainerStatsSample.BlockIO], [ContainerStatsSample.BlockIO]) {
        guard let text = try? FileSystem.readString(path) else { return ([], []) }
        var bytes: [ContainerStatsSample.BlockIO] = [], ios: [ContainerStatsSample.BlockIO] = []
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ")
            guard let first = f.first, let device = deviceNumbers(first) else { continue }
            for pair in f.dropFirst() {
                let kv = pair.split(separator: "=")
                guard kv.count == 2, let value = UInt64(kv[1]) else { continue }
                let entry = { (op: String) in ContainerStatsSample.BlockIO(major: device.major, minor: device.minor, op: op, value: value) }
                switch kv[0] {
                case "rbytes": bytes.append(entry("read"))
                case "wbytes": bytes.append(entry("write"))
                case "rios": ios.append(entry("read"))
                case "wios": ios.append(entry("write"))
                default: break
                }
            }
        }
        return (bytes, ios)
    }

    private static func deviceNumbers(_ text: Substring) -> (major: UInt64, minor: UInt64)? {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let major = UInt64(parts[0]), let minor = UInt64(parts[1]) else { return nil }
        return (major, minor)
    }
}

extension Cgroup {
    fileprivate func pidsOrFail() throws(EngineError) -> [Int32] {
        do { return try pids() } catch { throw EngineError(.system, "listing the container's processes: \(error)") }
    }
}
