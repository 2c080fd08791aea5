import BerthOCI
#if canImport(Glibc)
import Glibc
#endif

/// cgroup v2 (Documentation/admin-guide/cgroup-v2.rst): one hierarchy, controllers enabled
/// top-down through each parent's cgroup.subtree_control, devices through an eBPF program.
struct UnifiedCgroup: Cgroup {
    let hierarchy: CgroupHierarchy
    let path: String
    let directory: String
    let deviceFilterAttacher: any DeviceFilterAttacher

    init(hierarchy: CgroupHierarchy, path: String, deviceFilterAttacher: any DeviceFilterAttacher) {
        self.hierarchy = hierarchy
        self.path = path
        self.directory = hierarchy.directory(of: path)
        self.deviceFilterAttacher = deviceFilterAttacher
    }

    var mode: CgroupMode { .unified }
    var directories: [String: String] { ["unified": directory] }

    private func file(_ name: String) -> String { directory + "/" + name }

    // MARK: - Lifecycle

    /// mkdir -p, enabling every available controller in each ancestor first (as runc does), so
    /// the new cgroup gets its memory.*, cpu.*, ... files.
    func create() throws(CgroupError) {
        try makeDirectories(enabling: nil)
    }

    /// mkdir -p, enabling `controllers` (nil: all available) in each ancestor on the way.
    func makeDirectories(enabling controllers: Set<Substring>?) throws(CgroupError) {
        var current = hierarchy.mountPoint
        guard directory.count > current.count else { return }
        for component in directory.dropFirst(current.count).split(separator: "/") {
            if controllers?.isEmpty != true {
                try enableControllers(in: current, only: controllers)
            }
            current += "/" + component
            try CgroupFiles.makeDirectory(current)
        }
    }

    /// Enables `controllers` in every ancestor of an existing cgroup (hybrid hugetlb).
    func enableInAncestors(_ controllers: Set<Substring>) throws(CgroupError) {
        var current = hierarchy.mountPoint
        guard directory.count > current.count else { return }
        for component in directory.dropFirst(current.count).split(separator: "/") {
            try enableControllers(in: current, only: controllers)
            current += "/" + component
        }
    }

    /// Writes the missing controllers of `dir`'s cgroup.controllers (or of `only`) to its
    /// subtree_control. One write for all; if the kernel refuses it (say a parent with
    /// processes of its own, the "no internal processes" rule), one write per controller so
    /// the others still land.
    private func enableControllers(in dir: String, only: Set<Substring>?) throws(CgroupError) {
        let available = try CgroupFiles.readTrimmed(dir + "/cgroup.controllers").split(separator: " ")
        guard !available.isEmpty else { return }
        let enabled = Set(try CgroupFiles.readTrimmed(dir + "/cgroup.subtree_control").split(separator: " "))
        let missing = available.filter { !enabled.contains($0) && (only?.contains($0) ?? true) }
        guard !missing.isEmpty else { return }
        let control = dir + "/cgroup.subtree_control"
        do {
            try CgroupFiles.write(missing.map { "+" + $0 }.joined(separator: " "), to: control)
        } catch {
            for controller in missing {
                try? CgroupFiles.write("+" + controller, to: control)
            }
        }
    }

    /// True when the hierarchy's root offers `controller` (its cgroup.controllers).
    func hierarchyOffers(_ controller: String) -> Bool {
        let text = (try? CgroupFiles.readTrimmed(hierarchy.mountPoint + "/cgroup.controllers")) ?? ""
        return text.split(separator: " ").contains(Substring(controller))
    }

    func add(pid: Int32) throws(CgroupError) {
        try CgroupFiles.write(String(pid), to: file("cgroup.procs"))
    }

    func pids() throws(CgroupError) -> [Int32] {
        var result: [Int32] = []
        try collectPids(in: directory, into: &result)
        return result
    }

    func exists() -> Bool { CgroupFiles.isDirectory(directory) }

    func kill() throws(CgroupError) -> Bool {
        guard CgroupFiles.exists(file("cgroup.kill")) else { return false }
        try CgroupFiles.write("1", to: file("cgroup.kill"))
        return true
    }

    func destroy() throws(CgroupError) {
        try LegacyCgroup.remove(directory, in: hierarchy)
    }

    // MARK: - Freezer (cgroup.freeze, confirmed by "frozen 1" in cgroup.events)

    func freeze() throws(CgroupError) {
        try CgroupFiles.write("1", to: file("cgroup.freeze"))
        if try waitFrozen(true) { return }
        try? CgroupFiles.write("0", to: file("cgroup.freeze"))
        throw CgroupError(.system, "\(file("cgroup.events")) did not report \"frozen 1\" within 2 s; left the cgroup thawed")
    }

    func thaw() throws(CgroupError) {
        try CgroupFiles.write("0", to: file("cgroup.freeze"))
        if try waitFrozen(false) { return }
        throw CgroupError(.system, "\(file("cgroup.events")) did not report \"frozen 0\" within 2 s (is a parent cgroup frozen?)")
    }

    /// Polls cgroup.events for about 2 s; true when it reaches `frozen`. A tree without
    /// cgroup.events (not a kernel one) counts as reached.
    private func waitFrozen(_ frozen: Bool) throws(CgroupError) -> Bool {
        var delay: useconds_t = 100
        var waited: useconds_t = 0
        while true {
            guard let events = try CgroupFiles.readIfPresent(file("cgroup.events")) else { return true }
            if let value = CgroupFiles.keyValues(events)["frozen"], (value == 1) == frozen { return true }
            if waited >= 2_000_000 { return false }
            usleep(delay)
            waited += delay
            delay = min(delay * 2, 50_000)
        }
    }

    func isFrozen() -> Bool {
        if let events = try? CgroupFiles.readIfPresent(file("cgroup.events")),
           let value = CgroupFiles.keyValues(events)["frozen"] {
            return value == 1
        }
        return (try? CgroupFiles.readTrimmed(file("cgroup.freeze"))) == "1"
    }

    // MARK: - Limits (runc's fs2 order: pids, memory, io, cpu, cpuset, hugetlb, devices, unified)

    func apply(_ resources: Resources) throws(CgroupError) {
        if let pids = resources.pids {
            try CgroupFiles.write(pids.limit <= 0 ? "max" : String(pids.limit), to: file("pids.max"))
        }
        if let memory = resources.memory { try applyMemory(memory) }
        if let blockIO = resources.blockIO { try applyIO(blockIO) }
        if let cpu = resources.cpu { try applyCPU(cpu) }
        if let limits = resources.hugepageLimits, !limits.isEmpty { try applyHugepages(limits) }
        if let devices = resources.devices {
            let program = try DeviceFilter.program(for: devices)
            try deviceFilterAttacher.attach(program, license: DeviceFilter.license, toCgroup: directory)
        }
        if let network = resources.network, network.classID != nil || !(network.priorities ?? []).isEmpty {
            throw CgroupError(.unsupported, "resources.network (net_cls/net_prio) has no cgroup v2 equivalent")
        }
        // config-linux.md "Unified": each key is a file in the cgroup directory, written verbatim, last.
        if let unified = resources.unified {
            for key in unified.keys.sorted() {
                try CgroupFiles.validateName(key, what: "resources.unified key")
                let target = file(key)
                guard CgroupFiles.exists(target) else {
                    let controller = key.split(separator: ".").first.map(String.init) ?? key
                    throw CgroupError(.notFound, "resources.unified key \"\(key)\": \(target) does not exist (is the \(controller) controller enabled?)")
                }
                try CgroupFiles.write(unified[key]!, to: target)
            }
        }
    }

    private func applyMemory(_ memory: Resources.Memory) throws(CgroupError) {
        let limit = memory.limit.flatMap { $0 == 0 ? nil : $0 }
        let reservation = memory.reservation.flatMap { $0 == 0 ? nil : $0 }
        let swapMax = try Self.swapMax(swap: memory.swap ?? 0, limit: memory.limit ?? 0)
        if let swapMax {
            // Without swap accounting there is no memory.swap.max; "no swap" or "unlimited" then
            // ask for nothing the kernel would do differently.
            let target = file("memory.swap.max")
            if CgroupFiles.exists(target) {
                try CgroupFiles.write(swapMax, to: target)
            } else if swapMax != "max" && swapMax != "0" {
                throw CgroupError(.unsupported, "memory.swap needs \(target), which this kernel lacks (swap accounting is off)")
            }
        }
        if let limit {
            if memory.checkBeforeUpdate == true, limit > 0,
               let current = try CgroupFiles.readIfPresent(file("memory.current")).flatMap({ Int64($0) }),
               current > limit {
                throw CgroupError(.invalidArgument, "memory.limit \(limit) is below the current usage \(current) (\(file("memory.current")))")
            }
            try CgroupFiles.write(v2Limit(limit), to: file("memory.max"))
        }
        if let reservation {
            try CgroupFiles.write(v2Limit(reservation), to: file("memory.low"))
        }
        // memory.swappiness, disableOOMKiller and kernel limits have no v2 files; like runc, ignored.
    }

    /// OCI's swap is memory+swap; v2's memory.swap.max is swap alone. nil means "leave as is".
    static func swapMax(swap: Int64, limit: Int64) throws(CgroupError) -> String? {
        // Unlimited memory with no swap value: unlimited swap too (the v1 behaviour).
        if limit == -1 && swap == 0 { return "max" }
        if swap == 0 { return nil }
        if swap == -1 { return "max" }
        guard limit > 0 else {
            throw CgroupError(.invalidArgument, "memory.swap \(swap) needs a memory.limit (v2 sets swap apart from memory)")
        }
        guard swap >= limit else {
            throw CgroupError(.invalidArgument, "memory.swap \(swap) is below memory.limit \(limit); OCI swap counts memory+swap")
        }
        return String(swap - limit)
    }

    /// blkio weight 10-1000 to io.weight 1-10000 (runc's ConvertBlkIOToIOWeightValue).
    static func ioWeight(_ blkioWeight: UInt16) -> UInt64 {
        let weight = UInt64(min(max(blkioWeight, 10), 1000))
        return 1 + (weight - 10) * 9999 / 990
    }

    /// cpu.shares 2-262144 to cpu.weight 1-10000 (runc's ConvertCPUSharesToCgroupV2Value).
    static func cpuWeight(_ shares: UInt64) -> UInt64 {
        let clamped = min(max(shares, 2), 262_144)
        return 1 + (clamped - 2) * 9999 / 262_142
    }

    private func applyIO(_ blockIO: Resources.BlockIO) throws(CgroupError) {
        let weight = blockIO.weight.flatMap { $0 == 0 ? nil : $0 }
        let weightDevices = (blockIO.weightDevice ?? []).filter { $0.weight != nil }
        if weight != nil || !weightDevices.isEmpty {
            // BFQ's io.bfq.weight takes the blkio scale (10-1000) and is the one that acts when
            // BFQ schedules the disk, so it wins when present (as in runc); else io.weight.
            if CgroupFiles.exists(file("io.bfq.weight")) {
                if let weight { try CgroupFiles.write(String(weight), to: file("io.bfq.weight")) }
                for device in weightDevices {
                    try CgroupFiles.write("\(device.major):\(device.minor) \(device.weight!)", to: file("io.bfq.weight"))
                }
            } else {
                if let weight { try CgroupFiles.write(String(Self.ioWeight(weight)), to: file("io.weight")) }
                for device in weightDevices {
                    try CgroupFiles.write("\(device.major):\(device.minor) \(Self.ioWeight(device.weight!))", to: file("io.weight"))
                }
            }
        }
        let throttles: [(String, [Resources.BlockIO.ThrottleDevice]?)] = [
            ("rbps", blockIO.throttleReadBpsDevice), ("wbps", blockIO.throttleWriteBpsDevice),
            ("riops", blockIO.throttleReadIOPSDevice), ("wiops", blockIO.throttleWriteIOPSDevice),
        ]
        for (key, devices) in throttles {
            for device in devices ?? [] {
                // io.max takes "max" for no limit; a rate of 0 means unlimited in OCI.
                let rate = device.rate == 0 ? "max" : String(device.rate)
                try CgroupFiles.write("\(device.major):\(device.minor) \(key)=\(rate)", to: file("io.max"))
            }
        }
    }

    private func applyCPU(_ cpu: Resources.CPU) throws(CgroupError) {
        if (cpu.realtimePeriod ?? 0) != 0 || (cpu.realtimeRuntime ?? 0) != 0 {
            throw CgroupError(.unsupported, "cpu.realtimePeriod/realtimeRuntime have no cgroup v2 equivalent")
        }
        if let shares = cpu.shares, shares != 0 {
            try CgroupFiles.write(String(Self.cpuWeight(shares)), to: file("cpu.weight"))
        }
        let quota = cpu.quota ?? 0
        let period = cpu.period ?? 0
        if quota != 0 || period != 0 {
            // "$MAX $PERIOD"; the period may be left out to keep the current one.
            var value = quota > 0 ? String(quota) : "max"
            if period != 0 { value += " \(period)" }
            try CgroupFiles.write(value, to: file("cpu.max"))
        }
        if let burst = cpu.burst { try CgroupFiles.write(String(burst), to: file("cpu.max.burst")) }
        if let idle = cpu.idle { try CgroupFiles.write(String(idle), to: file("cpu.idle")) }
        if let cpus = cpu.cpus, !cpus.isEmpty { try CgroupFiles.write(cpus, to: file("cpuset.cpus")) }
        if let mems = cpu.mems, !mems.isEmpty { try CgroupFiles.write(mems, to: file("cpuset.mems")) }
    }

    func applyHugepages(_ limits: [Resources.HugepageLimit]) throws(CgroupError) {
        for limit in limits {
            try CgroupFiles.validateName(limit.pageSize, what: "hugepage size")
            let base = file("hugetlb." + limit.pageSize)
            try CgroupFiles.write(String(limit.limit), to: base + ".max")
            if CgroupFiles.exists(base + ".rsvd.max") {
                try CgroupFiles.write(String(limit.limit), to: base + ".rsvd.max")
            }
        }
    }

    // MARK: - Stats

    func stats() throws(CgroupError) -> CgroupStats {
        var result = CgroupStats()
        if let current = try CgroupFiles.readIfPresent(file("memory.current")) {
            let events = CgroupFiles.keyValues(try CgroupFiles.read(file("memory.events")))
            let stat = CgroupFiles.keyValues(try CgroupFiles.read(file("memory.stat")))
            let limit = try CgroupFiles.readTrimmed(file("memory.max"))
            let peak = try CgroupFiles.readIfPresent(file("memory.peak")).flatMap { UInt64($0) }
            let swap = try CgroupFiles.readIfPresent(file("memory.swap.current")).flatMap { UInt64($0) }
            result.memory = CgroupStats.Memory(
                usage: UInt64(current) ?? 0, limit: UInt64(limit), maxUsage: peak,
                failcnt: events["max"] ?? 0, oomEvents: events["oom"] ?? 0,
                oomKills: events["oom_kill"] ?? 0, swapUsage: swap, stat: stat)
        }
        if let text = try CgroupFiles.readIfPresent(file("cpu.stat")) {
            let stat = CgroupFiles.keyValues(text)
            result.cpu = CgroupStats.CPU(
                usageTotal: (stat["usage_usec"] ?? 0) * 1000, user: (stat["user_usec"] ?? 0) * 1000,
                system: (stat["system_usec"] ?? 0) * 1000, periods: stat["nr_periods"] ?? 0,
                throttledPeriods: stat["nr_throttled"] ?? 0, throttledTime: (stat["throttled_usec"] ?? 0) * 1000)
        }
        if let current = try CgroupFiles.readIfPresent(file("pids.current")) {
            let limit = try CgroupFiles.readTrimmed(file("pids.max"))
            result.pids = CgroupStats.Pids(current: UInt64(current) ?? 0, limit: UInt64(limit))
        }
        return result
    }
}
