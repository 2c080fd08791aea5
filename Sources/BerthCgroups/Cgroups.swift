/// BerthCgroups: the cgroup side of the OCI runtime (runtime-spec config-linux.md,
/// "Control groups"), for cgroup v1, hybrid and unified (v2) hosts.
///
/// It owns: reading mountinfo and /proc/self/cgroup, resolving `linux.cgroupsPath`, creating,
/// joining, limiting, freezing, measuring and removing a container's cgroup, and the eBPF
/// device filter that replaces the v1 devices controller on cgroup v2.
/// It imports only BerthOCI (the spec types) and CBerthSys (the bpf(2) shim); it must not
/// import the runtime or anything above it.
///
/// Every file path is injectable (`mountinfo`, `selfCgroup`, `fsRoot`), so tests drive it
/// against a fake cgroupfs tree in a temporary directory, without root.
import BerthOCI
#if canImport(Glibc)
import Glibc
#endif

/// A container's cgroup across every hierarchy the host mounts.
public protocol Cgroup: Sendable {
    /// The cgroup's path relative to the hierarchy root, with a leading "/". For a relative
    /// `cgroupsPath` on v1 it is the path in the primary hierarchy (they can differ).
    var path: String { get }
    var mode: CgroupMode { get }
    /// Hierarchy name (`memory`, `cpu,cpuacct`, `name=systemd`, `unified`) to directory.
    var directories: [String: String] { get }

    /// `mkdir -p` in every hierarchy (v2: enabling controllers in each parent on the way).
    func create() throws(CgroupError)
    /// Writes the limits; also what `update` uses, so it only touches what `resources` sets.
    func apply(_ resources: Resources) throws(CgroupError)
    /// Moves `pid` into the cgroup in every hierarchy.
    func add(pid: Int32) throws(CgroupError)
    /// All processes in this cgroup and its descendants.
    func pids() throws(CgroupError) -> [Int32]
    func freeze() throws(CgroupError)
    func thaw() throws(CgroupError)
    func isFrozen() -> Bool
    /// Kills every process through cgroup.kill; false when the kernel or version has no
    /// cgroup.kill (v1, hybrid, Linux < 5.14), so the caller signals `pids()` itself.
    func kill() throws(CgroupError) -> Bool
    /// Removes descendants then the cgroup itself in every hierarchy; a missing one is fine.
    func destroy() throws(CgroupError)
    func stats() throws(CgroupError) -> CgroupStats
    func exists() -> Bool
}

public enum Cgroups {
    /// Detects legacy / hybrid / unified from mountinfo and returns the matching implementation.
    ///
    /// - Parameters:
    ///   - cgroupsPath: `linux.cgroupsPath`; see `CgroupPath` for the accepted forms.
    ///   - mountinfo: the mountinfo file to read.
    ///   - selfCgroup: the calling process's cgroup file; read only for a relative path.
    ///   - fsRoot: prepended to every mount point (a fake tree in tests; empty on a host).
    ///   - deviceFilterAttacher: loads the v2 device filter (replaceable in tests).
    public static func open(cgroupsPath: String?, containerID: String,
                            mountinfo: String = "/proc/self/mountinfo",
                            selfCgroup: String = "/proc/self/cgroup",
                            fsRoot: String = "",
                            deviceFilterAttacher: any DeviceFilterAttacher = KernelDeviceFilterAttacher()) throws(CgroupError) -> any Cgroup {
        let path = try CgroupPath.resolve(cgroupsPath, containerID: containerID)
        let layout = try CgroupLayout(mounts: MountinfoEntry.parse(CgroupFiles.read(mountinfo)), fsRoot: fsRoot)
        var own = ProcessCgroups()
        if case .relative = path {
            own = ProcessCgroups.parse(try CgroupFiles.read(selfCgroup))
        }
        return open(path: path, layout: layout, ownCgroups: own, deviceFilterAttacher: deviceFilterAttacher)
    }

    /// The same from already parsed inputs (a runtime may cache the layout).
    public static func open(path: CgroupPath, layout: CgroupLayout, ownCgroups: ProcessCgroups,
                            deviceFilterAttacher: any DeviceFilterAttacher = KernelDeviceFilterAttacher()) -> any Cgroup {
        let unified = layout.unified.map { hierarchy in
            UnifiedCgroup(hierarchy: hierarchy, path: path.inHierarchy(ownCgroup: ownCgroups.unified),
                          deviceFilterAttacher: deviceFilterAttacher)
        }
        switch layout.mode {
        case .unified:
            // CgroupLayout guarantees a cgroup2 mount in unified mode.
            return unified!
        case .legacy, .hybrid:
            let members = layout.legacy.map { hierarchy in
                let inHierarchy = path.inHierarchy(ownCgroup: ownCgroups.legacyPath(for: hierarchy.controllers))
                return LegacyCgroup.Member(hierarchy: hierarchy, path: inHierarchy,
                                           directory: hierarchy.directory(of: inHierarchy))
            }
            return LegacyCgroup(mode: layout.mode, members: members, unified: unified)
        }
    }
}

/// Usage counters of one cgroup.
public struct CgroupStats: Sendable, Equatable {
    public struct Memory: Sendable, Equatable {
        /// Bytes in use now (v1 memory.usage_in_bytes, v2 memory.current).
        public var usage: UInt64
        /// nil when unlimited.
        public var limit: UInt64?
        /// Peak usage (v1 memory.max_usage_in_bytes, v2 memory.peak on Linux >= 5.19).
        public var maxUsage: UInt64?
        /// Times usage hit the limit (v1 memory.failcnt, v2 memory.events `max`).
        public var failcnt: UInt64
        /// OOM situations (v1 nil, v2 memory.events `oom`).
        public var oomEvents: UInt64?
        /// Processes killed by the OOM killer (memory.oom_control or memory.events `oom_kill`).
        public var oomKills: UInt64
        /// Swap in use (v1 memsw usage minus usage, v2 memory.swap.current), when accounted.
        public var swapUsage: UInt64?
        /// memory.stat as read.
        public var stat: [String: UInt64]
    }

    public struct CPU: Sendable, Equatable {
        /// Total, user and system CPU time in nanoseconds.
        public var usageTotal: UInt64
        public var user: UInt64
        public var system: UInt64
        public var periods: UInt64
        public var throttledPeriods: UInt64
        /// Nanoseconds.
        public var throttledTime: UInt64
    }

    public struct Pids: Sendable, Equatable {
        public var current: UInt64
        /// nil when unlimited.
        public var limit: UInt64?
    }

    /// nil when the controller is not available for this cgroup.
    public var memory: Memory?
    public var cpu: CPU?
    public var pids: Pids?

    public init(memory: Memory? = nil, cpu: CPU? = nil, pids: Pids? = nil) {
        self.memory = memory; self.cpu = cpu; self.pids = pids
    }
}

/// Reads the pids in `directory` and every cgroup below it.
func collectPids(in directory: String, into result: inout [Int32], isTop: Bool = true) throws(CgroupError) {
    let text: String
    do {
        text = try CgroupFiles.read(directory + "/cgroup.procs")
    } catch where !isTop && error.errno == ENOENT {
        return  // a child cgroup removed while we walked
    }
    for line in text.split(separator: "\n") {
        if let pid = Int32(line.trimmed) { result.append(pid) }
    }
    for child in CgroupFiles.subdirectories(of: directory) {
        try collectPids(in: directory + "/" + child, into: &result, isTop: false)
    }
}

/// "-1" means unlimited in OCI; the v2 files spell it "max".
func v2Limit(_ value: Int64) -> String {
    value < 0 ? "max" : String(value)
}
