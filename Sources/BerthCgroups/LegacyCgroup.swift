import BerthOCI
#if canImport(Glibc)
import Glibc
#endif

/// cgroup v1, alone (legacy) or beside a cgroup2 mount (hybrid).
///
/// In hybrid mode the cgroup is also created in and joined to the unified hierarchy, as runc
/// does, so that tools reading the v2 path see the container; this is best effort, because
/// the unified hierarchy of a hybrid host usually offers no resource controller. Limits go to
/// v1, except hugetlb when only the unified hierarchy has it (as on Debian 12 hybrid hosts).
struct LegacyCgroup: Cgroup {
    struct Member: Sendable {
        let hierarchy: CgroupHierarchy
        /// The cgroup's path in this hierarchy (relative cgroupsPaths differ per hierarchy).
        let path: String
        let directory: String
    }

    let mode: CgroupMode
    let members: [Member]
    let unified: UnifiedCgroup?

    var path: String { primary?.path ?? "/" }

    var directories: [String: String] {
        var result: [String: String] = [:]
        for member in members { result[member.hierarchy.name] = member.directory }
        if let unified { result["unified"] = unified.directory }
        return result
    }

    /// The hierarchy used for pids(), exists() and path: one every process joins.
    private var primary: Member? {
        for controller in ["pids", "freezer", "devices", "memory", "cpu"] {
            if let member = member(for: controller) { return member }
        }
        return members.first
    }

    private func member(for controller: String) -> Member? {
        members.first { $0.hierarchy.controllers.contains(controller) }
    }

    private func directory(for controller: String, needed what: String) throws(CgroupError) -> String {
        guard let member = member(for: controller) else {
            throw CgroupError(.unsupported, "cannot apply \(what): no cgroup v1 hierarchy with the \(controller) controller is mounted")
        }
        return member.directory
    }

    // MARK: - Lifecycle

    func create() throws(CgroupError) {
        for member in members {
            try makeDirectories(member)
        }
        if let unified {
            // Only directories: no v2 controller is needed here (hugetlb is enabled on demand).
            try? unified.makeDirectories(enabling: [])
        }
    }

    /// mkdir -p below the mount point; in the cpuset hierarchy every level gets its parent's
    /// cpus and mems when empty, since the kernel refuses tasks in a cpuset without them.
    private func makeDirectories(_ member: Member) throws(CgroupError) {
        let mountPoint = member.hierarchy.mountPoint
        guard member.directory.count > mountPoint.count else {
            try CgroupFiles.makeDirectory(mountPoint)
            return
        }
        let isCpuset = member.hierarchy.controllers.contains("cpuset")
        var inherited: [String: String] = [:]
        var current = mountPoint
        for component in member.directory.dropFirst(mountPoint.count).split(separator: "/") {
            let parent = current
            current += "/" + component
            try CgroupFiles.makeDirectory(current)
            if isCpuset {
                for file in ["cpuset.cpus", "cpuset.mems"] {
                    let own = try CgroupFiles.readTrimmed(current + "/" + file)
                    if own.isEmpty {
                        let value: String
                        if let known = inherited[file] {
                            value = known
                        } else {
                            value = try CgroupFiles.readTrimmed(parent + "/" + file)
                        }
                        try CgroupFiles.write(value, to: current + "/" + file)
                        inherited[file] = value
                    } else {
                        inherited[file] = own
                    }
                }
            }
        }
    }

    func add(pid: Int32) throws(CgroupError) {
        for member in members {
            try CgroupFiles.write(String(pid), to: member.directory + "/cgroup.procs")
        }
        if let unified {
            try? unified.add(pid: pid)
        }
    }

    func pids() throws(CgroupError) -> [Int32] {
        guard let primary else { return [] }
        var result: [Int32] = []
        try collectPids(in: primary.directory, into: &result)
        return result
    }

    func exists() -> Bool {
        guard let primary else { return false }
        return CgroupFiles.isDirectory(primary.directory)
    }

    func kill() throws(CgroupError) -> Bool { false }

    func destroy() throws(CgroupError) {
        var firstError: CgroupError?
        for member in members {
            do { try Self.remove(member.directory, in: member.hierarchy) } catch { firstError = firstError ?? error }
        }
        if let unified {
            do { try unified.destroy() } catch { firstError = firstError ?? error }
        }
        if let firstError { throw firstError }
    }

    /// removeTree, except on the mount point itself: that is the root (or the caller's
    /// namespace root) with every other cgroup of the host below it.
    static func remove(_ directory: String, in hierarchy: CgroupHierarchy) throws(CgroupError) {
        guard directory.count > hierarchy.mountPoint.count else {
            throw CgroupError(.invalidArgument, "refusing to remove \(directory), the root of the \(hierarchy.name) hierarchy")
        }
        try CgroupFiles.removeTree(directory, plainDirectories: !hierarchy.fsRoot.isEmpty)
    }

    // MARK: - Freezer

    func freeze() throws(CgroupError) {
        let file = try directory(for: "freezer", needed: "freeze") + "/freezer.state"
        // A v1 freeze can linger in FREEZING while processes fork; like runc, rewrite FROZEN,
        // and now and then thaw and pause so the freeze can catch up.
        for attempt in 0..<1000 {
            if attempt % 50 == 49 {
                try? CgroupFiles.write("THAWED", to: file)
                usleep(10_000)
            }
            try CgroupFiles.write("FROZEN", to: file)
            if attempt % 25 == 24 { usleep(10) }
            switch try CgroupFiles.readTrimmed(file) {
            case "FROZEN": return
            case "FREEZING": continue
            case let state: throw CgroupError(.system, "unexpected state \"\(state)\" in \(file) while freezing")
            }
        }
        try? CgroupFiles.write("THAWED", to: file)
        throw CgroupError(.system, "\(file) stayed FREEZING; left the cgroup thawed")
    }

    func thaw() throws(CgroupError) {
        let file = try directory(for: "freezer", needed: "thaw") + "/freezer.state"
        try CgroupFiles.write("THAWED", to: file)
        for _ in 0..<1000 {
            let state = try CgroupFiles.readTrimmed(file)
            if state == "THAWED" { return }
            usleep(1000)
        }
        throw CgroupError(.system, "\(file) did not read THAWED after writing it (is a parent cgroup frozen?)")
    }

    func isFrozen() -> Bool {
        guard let member = member(for: "freezer") else { return false }
        return (try? CgroupFiles.readTrimmed(member.directory + "/freezer.state")) == "FROZEN"
    }

    // MARK: - Limits (runc's subsystem order: cpuset, devices, memory, cpu, pids, blkio, hugetlb, net)

    func apply(_ resources: Resources) throws(CgroupError) {
        if let unifiedKeys = resources.unified, let key = unifiedKeys.keys.sorted().first {
            throw CgroupError(.unsupported, "resources.unified key \"\(key)\" needs cgroup v2, but this host's controllers are cgroup v1 (\(mode.rawValue))")
        }
        if let cpu = resources.cpu { try applyCpuset(cpu) }
        if let devices = resources.devices { try applyDevices(devices) }
        if let memory = resources.memory { try applyMemory(memory) }
        if let cpu = resources.cpu { try applyCPU(cpu) }
        if let pids = resources.pids {
            let dir = try directory(for: "pids", needed: "pids.limit")
            try CgroupFiles.write(pids.limit <= 0 ? "max" : String(pids.limit), to: dir + "/pids.max")
        }
        if let blockIO = resources.blockIO { try applyBlockIO(blockIO) }
        if let limits = resources.hugepageLimits, !limits.isEmpty { try applyHugepages(limits) }
        if let network = resources.network { try applyNetwork(network) }
    }

    private func applyCpuset(_ cpu: Resources.CPU) throws(CgroupError) {
        let cpus = cpu.cpus.flatMap { $0.isEmpty ? nil : $0 }
        let mems = cpu.mems.flatMap { $0.isEmpty ? nil : $0 }
        guard cpus != nil || mems != nil else { return }
        let dir = try directory(for: "cpuset", needed: "cpu.cpus/cpu.mems")
        if let cpus { try CgroupFiles.write(cpus, to: dir + "/cpuset.cpus") }
        if let mems { try CgroupFiles.write(mems, to: dir + "/cpuset.mems") }
    }

    /// Default deny, then each rule in order (config-linux.md "Device allowlist").
    private func applyDevices(_ rules: [Resources.DeviceCgroup]) throws(CgroupError) {
        let dir = try directory(for: "devices", needed: "device rules")
        for write in try Self.deviceWrites(rules) {
            try CgroupFiles.write(write.value, to: dir + "/" + write.file)
        }
    }

    /// The (file, value) writes for `rules`, in order; validated before anything is written.
    static func deviceWrites(_ rules: [Resources.DeviceCgroup]) throws(CgroupError) -> [(file: String, value: String)] {
        var writes: [(file: String, value: String)] = [("devices.deny", "a")]
        for rule in rules {
            for line in try deviceRuleLines(rule) {
                writes.append((rule.allow ? "devices.allow" : "devices.deny", line))
            }
        }
        return writes
    }

    /// The v1 devices syntax, `c 1:3 rwm`, with `*` for a wildcard major or minor. The kernel
    /// reads any rule of type `a` as "everything", so a type-`a` rule narrowed by number or
    /// access is split into its `c` and `b` halves.
    static func deviceRuleLines(_ rule: Resources.DeviceCgroup) throws(CgroupError) -> [String] {
        let parsed = try DeviceFilter.Rule(rule)
        let major = parsed.major.map { String($0) } ?? "*"
        let minor = parsed.minor.map { String($0) } ?? "*"
        let access = parsed.accessString
        switch parsed.type {
        case .char: return ["c \(major):\(minor) \(access)"]
        case .block: return ["b \(major):\(minor) \(access)"]
        case nil:
            if parsed.matchesEverything { return ["a *:* rwm"] }
            return ["c \(major):\(minor) \(access)", "b \(major):\(minor) \(access)"]
        }
    }

    private func applyMemory(_ memory: Resources.Memory) throws(CgroupError) {
        // As in runc, 0 means "not set" for the byte limits.
        let limit = memory.limit.flatMap { $0 == 0 ? nil : $0 }
        var swap = memory.swap.flatMap { $0 == 0 ? nil : $0 }
        let reservation = memory.reservation.flatMap { $0 == 0 ? nil : $0 }
        let kernelTCP = memory.kernelTCP.flatMap { $0 == 0 ? nil : $0 }
        guard limit != nil || swap != nil || reservation != nil || memory.swappiness != nil
                || memory.disableOOMKiller == true || kernelTCP != nil else { return }
        let dir = try directory(for: "memory", needed: "memory limits")
        let limitFile = dir + "/memory.limit_in_bytes"
        let swapFile = dir + "/memory.memsw.limit_in_bytes"
        let hasSwapAccounting = CgroupFiles.exists(swapFile)

        // Unlimited memory with no swap value means unlimited memory+swap too.
        if limit == -1 && swap == nil && hasSwapAccounting { swap = -1 }
        if let requested = swap, !hasSwapAccounting {
            guard requested == -1 || requested == limit else {
                throw CgroupError(.unsupported, "memory.swap \(requested) needs \(swapFile), which this kernel lacks (swap accounting is off)")
            }
            swap = nil
        }

        switch (limit, swap) {
        case let (limit?, swap?):
            // The kernel keeps memsw >= limit at every step: raise memsw first when the new
            // limit would exceed the current memsw, otherwise lower the limit first.
            let currentSwap = Self.bytes(try CgroupFiles.readTrimmed(swapFile))
            if Self.effective(limit) > currentSwap {
                try CgroupFiles.write(String(swap), to: swapFile)
                try CgroupFiles.write(String(limit), to: limitFile)
            } else {
                try CgroupFiles.write(String(limit), to: limitFile)
                try CgroupFiles.write(String(swap), to: swapFile)
            }
        case let (limit?, nil):
            try CgroupFiles.write(String(limit), to: limitFile)
        case let (nil, swap?):
            try CgroupFiles.write(String(swap), to: swapFile)
        case (nil, nil):
            break
        }
        if let reservation {
            try CgroupFiles.write(String(reservation), to: dir + "/memory.soft_limit_in_bytes")
        }
        if let kernelTCP {
            try CgroupFiles.write(String(kernelTCP), to: dir + "/memory.kmem.tcp.limit_in_bytes")
        }
        if let swappiness = memory.swappiness {
            guard swappiness <= 100 else {
                throw CgroupError(.invalidArgument, "memory.swappiness \(swappiness) is out of range 0-100")
            }
            try CgroupFiles.write(String(swappiness), to: dir + "/memory.swappiness")
        }
        if memory.disableOOMKiller == true {
            try CgroupFiles.write("1", to: dir + "/memory.oom_control")
        }
    }

    private static func effective(_ limit: Int64) -> UInt64 { limit < 0 ? UInt64.max : UInt64(limit) }

    private static func bytes(_ text: String) -> UInt64 {
        if text == "-1" || text == "max" { return UInt64.max }
        return UInt64(text) ?? UInt64.max
    }

    private func applyCPU(_ cpu: Resources.CPU) throws(CgroupError) {
        let shares = cpu.shares.flatMap { $0 == 0 ? nil : $0 }
        let quota = cpu.quota.flatMap { $0 == 0 ? nil : $0 }
        let period = cpu.period.flatMap { $0 == 0 ? nil : $0 }
        let rtPeriod = cpu.realtimePeriod.flatMap { $0 == 0 ? nil : $0 }
        let rtRuntime = cpu.realtimeRuntime.flatMap { $0 == 0 ? nil : $0 }
        guard shares != nil || quota != nil || period != nil || cpu.burst != nil || cpu.idle != nil
                || rtPeriod != nil || rtRuntime != nil else { return }
        let dir = try directory(for: "cpu", needed: "cpu limits")

        // Real-time first: the kernel checks the group's rt budget against its parent's.
        if let rtPeriod { try CgroupFiles.write(String(rtPeriod), to: dir + "/cpu.rt_period_us") }
        if let rtRuntime { try CgroupFiles.write(String(rtRuntime), to: dir + "/cpu.rt_runtime_us") }

        if let shares {
            let file = dir + "/cpu.shares"
            try CgroupFiles.write(String(shares), to: file)
            let actual = try CgroupFiles.readTrimmed(file)
            if actual != String(shares) {
                throw CgroupError(.invalidArgument, "cpu.shares \(shares) was clamped by the kernel to \(actual) (\(file))")
            }
        }
        // Period before quota; a smaller period can be refused (EINVAL) while the old quota
        // is in place, so then retry it after the quota, as runc does.
        var periodPending = false
        if let period {
            do {
                try CgroupFiles.write(String(period), to: dir + "/cpu.cfs_period_us")
            } catch where error.errno == EINVAL && quota != nil {
                periodPending = true
            }
        }
        if let quota {
            try CgroupFiles.write(String(quota), to: dir + "/cpu.cfs_quota_us")
            if periodPending, let period {
                try CgroupFiles.write(String(period), to: dir + "/cpu.cfs_period_us")
            }
        }
        if let burst = cpu.burst { try CgroupFiles.write(String(burst), to: dir + "/cpu.cfs_burst_us") }
        if let idle = cpu.idle { try CgroupFiles.write(String(idle), to: dir + "/cpu.idle") }
    }

    private func applyBlockIO(_ blockIO: Resources.BlockIO) throws(CgroupError) {
        let weight = blockIO.weight.flatMap { $0 == 0 ? nil : $0 }
        let leafWeight = blockIO.leafWeight.flatMap { $0 == 0 ? nil : $0 }
        let throttles: [(String, [Resources.BlockIO.ThrottleDevice]?)] = [
            ("blkio.throttle.read_bps_device", blockIO.throttleReadBpsDevice),
            ("blkio.throttle.write_bps_device", blockIO.throttleWriteBpsDevice),
            ("blkio.throttle.read_iops_device", blockIO.throttleReadIOPSDevice),
            ("blkio.throttle.write_iops_device", blockIO.throttleWriteIOPSDevice),
        ]
        let weightDevices = blockIO.weightDevice ?? []
        guard weight != nil || leafWeight != nil || !weightDevices.isEmpty
                || throttles.contains(where: { !($0.1 ?? []).isEmpty }) else { return }
        let dir = try directory(for: "blkio", needed: "blockIO limits")

        if weight != nil || weightDevices.contains(where: { $0.weight != nil }) {
            // CFQ's blkio.weight, or BFQ's blkio.bfq.weight on kernels without CFQ (same 10-1000 range).
            let prefix: String
            if CgroupFiles.exists(dir + "/blkio.weight") {
                prefix = "blkio."
            } else if CgroupFiles.exists(dir + "/blkio.bfq.weight") {
                prefix = "blkio.bfq."
            } else {
                throw CgroupError(.unsupported, "cannot apply blockIO weight: neither \(dir)/blkio.weight nor \(dir)/blkio.bfq.weight exists (no CFQ or BFQ scheduler)")
            }
            if let weight { try CgroupFiles.write(String(weight), to: dir + "/" + prefix + "weight") }
            for device in weightDevices {
                if let value = device.weight {
                    try CgroupFiles.write("\(device.major):\(device.minor) \(value)", to: dir + "/" + prefix + "weight_device")
                }
            }
        }
        if let leafWeight { try CgroupFiles.write(String(leafWeight), to: dir + "/blkio.leaf_weight") }
        for device in weightDevices {
            if let value = device.leafWeight {
                try CgroupFiles.write("\(device.major):\(device.minor) \(value)", to: dir + "/blkio.leaf_weight_device")
            }
        }
        for (file, devices) in throttles {
            for device in devices ?? [] {
                try CgroupFiles.write("\(device.major):\(device.minor) \(device.rate)", to: dir + "/" + file)
            }
        }
    }

    private func applyHugepages(_ limits: [Resources.HugepageLimit]) throws(CgroupError) {
        guard let member = member(for: "hugetlb") else {
            // Hybrid hosts may offer hugetlb only in the unified hierarchy.
            if let unified, unified.hierarchyOffers("hugetlb") {
                try unified.enableInAncestors(["hugetlb"])
                try unified.applyHugepages(limits)
                return
            }
            throw CgroupError(.unsupported, "cannot apply hugepageLimits: the hugetlb controller is mounted in no hierarchy")
        }
        for limit in limits {
            try CgroupFiles.validateName(limit.pageSize, what: "hugepage size")
            let base = member.directory + "/hugetlb." + limit.pageSize
            try CgroupFiles.write(String(limit.limit), to: base + ".limit_in_bytes")
            // Reservations (Linux >= 5.7) take the same limit, or a reserved-but-unfaulted page escapes it.
            if CgroupFiles.exists(base + ".rsvd.limit_in_bytes") {
                try CgroupFiles.write(String(limit.limit), to: base + ".rsvd.limit_in_bytes")
            }
        }
    }

    private func applyNetwork(_ network: Resources.Network) throws(CgroupError) {
        if let classID = network.classID {
            let dir = try directory(for: "net_cls", needed: "network.classID")
            try CgroupFiles.write(String(classID), to: dir + "/net_cls.classid")
        }
        if let priorities = network.priorities, !priorities.isEmpty {
            let dir = try directory(for: "net_prio", needed: "network.priorities")
            for priority in priorities {
                try CgroupFiles.write("\(priority.name) \(priority.priority)", to: dir + "/net_prio.ifpriomap")
            }
        }
    }

    // MARK: - Stats

    func stats() throws(CgroupError) -> CgroupStats {
        var result = CgroupStats()
        if let dir = member(for: "memory")?.directory {
            result.memory = try memoryStats(dir)
        }
        if let dir = member(for: "cpuacct")?.directory {
            let usage = try CgroupFiles.readUInt64(dir + "/cpuacct.usage")
            let times = CgroupFiles.keyValues(try CgroupFiles.read(dir + "/cpuacct.stat"))
            // cpuacct.stat counts USER_HZ ticks.
            let ticks = UInt64(max(sysconf(Int32(_SC_CLK_TCK)), 1))
            let nanosPerTick = 1_000_000_000 / ticks
            var cpu = CgroupStats.CPU(usageTotal: usage, user: (times["user"] ?? 0) * nanosPerTick,
                                      system: (times["system"] ?? 0) * nanosPerTick,
                                      periods: 0, throttledPeriods: 0, throttledTime: 0)
            if let cpuDir = member(for: "cpu")?.directory,
               let text = try? CgroupFiles.read(cpuDir + "/cpu.stat") {
                let throttling = CgroupFiles.keyValues(text)
                cpu.periods = throttling["nr_periods"] ?? 0
                cpu.throttledPeriods = throttling["nr_throttled"] ?? 0
                cpu.throttledTime = throttling["throttled_time"] ?? 0
            }
            result.cpu = cpu
        }
        if let dir = member(for: "pids")?.directory {
            let current = try CgroupFiles.readUInt64(dir + "/pids.current")
            let limit = try CgroupFiles.readTrimmed(dir + "/pids.max")
            result.pids = CgroupStats.Pids(current: current, limit: UInt64(limit))
        }
        return result
    }

    private func memoryStats(_ dir: String) throws(CgroupError) -> CgroupStats.Memory {
        let usage = try CgroupFiles.readUInt64(dir + "/memory.usage_in_bytes")
        let limit = try CgroupFiles.readUInt64(dir + "/memory.limit_in_bytes")
        let maxUsage = try CgroupFiles.readUInt64(dir + "/memory.max_usage_in_bytes")
        let failcnt = try CgroupFiles.readUInt64(dir + "/memory.failcnt")
        let stat = CgroupFiles.keyValues(try CgroupFiles.read(dir + "/memory.stat"))
        let oom = CgroupFiles.keyValues((try? CgroupFiles.read(dir + "/memory.oom_control")) ?? "")
        var swapUsage: UInt64?
        if let memsw = try CgroupFiles.readIfPresent(dir + "/memory.memsw.usage_in_bytes"), let both = UInt64(memsw) {
            swapUsage = both > usage ? both - usage : 0
        }
        // v1 reports "unlimited" as the largest page-aligned signed value.
        let unlimited = limit >= 0x7FFF_FFFF_FFFF_F000
        return CgroupStats.Memory(usage: usage, limit: unlimited ? nil : limit, maxUsage: maxUsage,
                                  failcnt: failcnt, oomEvents: nil, oomKills: oom["oom_kill"] ?? 0,
                                  swapUsage: swapUsage, stat: stat)
    }
}
