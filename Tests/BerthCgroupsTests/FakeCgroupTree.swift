import Foundation
import XCTest

/// A cgroupfs stand-in under a temporary directory: real directories and files, a mountinfo
/// and a /proc/self/cgroup to match. Files a kernel would create are created by the test, so
/// a write to a file the kernel would not have fails as it would on a host.
final class FakeCgroupTree {
    let root: String

    init() throws {
        var template = Array((NSTemporaryDirectory() + "/berth-cgroups-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw CocoaError(.fileWriteUnknown) }
        root = String(cString: made)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    var mountinfoPath: String { root + "/proc/self/mountinfo" }
    var selfCgroupPath: String { root + "/proc/self/cgroup" }

    func path(_ relative: String) -> String { root + relative }

    /// Writes `content` at `relative`, creating parent directories.
    func write(_ relative: String, _ content: String) {
        let full = path(relative)
        try! FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent,
                                                 withIntermediateDirectories: true)
        try! content.write(toFile: full, atomically: false, encoding: .utf8)
    }

    /// Creates `files` (name: initial content) in the directory `relative`.
    func populate(_ relative: String, _ files: [String: String]) {
        try! FileManager.default.createDirectory(atPath: path(relative), withIntermediateDirectories: true)
        for (name, content) in files { write(relative + "/" + name, content) }
    }

    func read(_ relative: String) -> String? {
        try? String(contentsOfFile: path(relative), encoding: .utf8)
    }

    func exists(_ relative: String) -> Bool {
        FileManager.default.fileExists(atPath: path(relative))
    }

    /// Every file under `relative` with its content, keyed by path relative to it.
    func snapshot(_ relative: String = "") -> [String: String] {
        let base = path(relative)
        var result: [String: String] = [:]
        guard let walker = FileManager.default.enumerator(atPath: base) else { return result }
        while let item = walker.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: base + "/" + item, isDirectory: &isDirectory), !isDirectory.boolValue {
                result[item] = (try? String(contentsOfFile: base + "/" + item, encoding: .utf8)) ?? "<unreadable>"
            }
        }
        return result
    }

    /// Files whose content differs between two snapshots (new files included).
    static func changes(from before: [String: String], to after: [String: String]) -> [String: String] {
        after.filter { before[$0.key] != $0.value }
    }

    // MARK: - Layouts

    /// The v1 hierarchies of this machine (Debian 12, hybrid): cgroupfs at /sys/fs/cgroup/NAME.
    static let hybridMountinfo = """
        22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
        31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
        32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
        33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
        34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
        35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
        36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
        37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
        38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
        39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
        40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
        41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw

        """

    static let hybridSelfCgroup = """
        9:name=systemd:/
        8:pids:/
        7:blkio:/
        6:freezer:/
        5:devices:/
        4:memory:/process_api/1aa70a15dfd674ae38766c0fe0c11709
        3:cpuset:/
        2:cpuacct:/
        1:cpu:/
        0::/

        """

    /// Control files (name: initial content) the kernel gives a new v1 cgroup, per hierarchy.
    static let v1Files: [String: [String: String]] = [
        "cpu": ["cpu.shares": "1024", "cpu.cfs_quota_us": "-1", "cpu.cfs_period_us": "100000",
                "cpu.cfs_burst_us": "0", "cpu.idle": "0", "cpu.rt_period_us": "1000000",
                "cpu.rt_runtime_us": "0", "cpu.stat": "nr_periods 4\nnr_throttled 1\nthrottled_time 5000\n"],
        "cpuacct": ["cpuacct.usage": "123456789\n", "cpuacct.stat": "user 250\nsystem 100\n"],
        "cpuset": ["cpuset.cpus": "\n", "cpuset.mems": "\n"],
        "memory": ["memory.limit_in_bytes": "9223372036854771712\n", "memory.soft_limit_in_bytes": "9223372036854771712\n",
                   "memory.memsw.limit_in_bytes": "9223372036854771712\n", "memory.swappiness": "60\n",
                   "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
                   "memory.kmem.tcp.limit_in_bytes": "9223372036854771712\n",
                   "memory.usage_in_bytes": "1048576\n", "memory.max_usage_in_bytes": "2097152\n",
                   "memory.failcnt": "3\n", "memory.memsw.usage_in_bytes": "1310720\n",
                   "memory.stat": "cache 4096\nrss 8192\ntotal_rss 8192\n"],
        "devices": ["devices.allow": "", "devices.deny": "", "devices.list": "a *:* rwm\n"],
        "freezer": ["freezer.state": "THAWED\n"],
        "blkio": ["blkio.bfq.weight": "100\n", "blkio.bfq.weight_device": "",
                  "blkio.throttle.read_bps_device": "", "blkio.throttle.write_bps_device": "",
                  "blkio.throttle.read_iops_device": "", "blkio.throttle.write_iops_device": ""],
        "pids": ["pids.max": "max\n", "pids.current": "3\n"],
        "systemd": [:],
    ]

    /// Builds the hybrid tree of this machine with `cgroups` (paths like "/berth/x") pre-created
    /// in every v1 hierarchy (with control files) and in the unified one.
    func buildHybrid(cgroups: [String], selfCgroup: String = FakeCgroupTree.hybridSelfCgroup) {
        write("/proc/self/mountinfo", Self.hybridMountinfo)
        write("/proc/self/cgroup", selfCgroup)
        for (name, files) in Self.v1Files {
            var rootFiles = files.merging(["cgroup.procs": "1\n"]) { $1 }
            if name == "cpuset" { rootFiles.merge(["cpuset.cpus": "0-1\n", "cpuset.mems": "0\n"]) { $1 } }
            populate("/sys/fs/cgroup/" + name, rootFiles)
            for cgroup in cgroups {
                var prefix = ""
                for component in cgroup.split(separator: "/") {
                    prefix += "/" + component
                    populate("/sys/fs/cgroup/" + name + prefix, files.merging(["cgroup.procs": ""]) { $1 })
                }
            }
        }
        populate("/sys/fs/cgroup/unified", ["cgroup.controllers": "hugetlb\n", "cgroup.subtree_control": "\n", "cgroup.procs": "1\n"])
        for cgroup in cgroups {
            var prefix = ""
            for component in cgroup.split(separator: "/") {
                prefix += "/" + component
                populate("/sys/fs/cgroup/unified" + prefix, ["cgroup.controllers": "\n", "cgroup.subtree_control": "\n",
                                                              "cgroup.procs": "", "hugetlb.2MB.max": "max\n"])
            }
        }
    }

    static let unifiedMountinfo = """
        24 1 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
        25 24 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot

        """

    static let unifiedControllers = "cpuset cpu io memory hugetlb pids rdma misc"

    /// Control files of a new v2 cgroup whose parent enabled every controller.
    static let v2Files: [String: String] = [
        "cgroup.controllers": "", "cgroup.subtree_control": "", "cgroup.procs": "", "cgroup.freeze": "0\n",
        "cgroup.kill": "", "cgroup.type": "domain\n",
        "memory.max": "max\n", "memory.low": "0\n", "memory.high": "max\n", "memory.swap.max": "max\n",
        "memory.current": "4096\n", "memory.peak": "8192\n", "memory.swap.current": "0\n",
        "memory.events": "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\noom_group_kill 0\n",
        "memory.stat": "anon 4096\nfile 0\n",
        "cpu.weight": "100\n", "cpu.max": "max 100000\n", "cpu.max.burst": "0\n", "cpu.idle": "0\n",
        "cpu.stat": "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 2\nnr_throttled 1\nthrottled_usec 30\n",
        "cpuset.cpus": "\n", "cpuset.mems": "\n",
        "io.weight": "default 100\n", "io.max": "",
        "pids.max": "max\n", "pids.current": "1\n",
        "hugetlb.2MB.max": "max\n", "hugetlb.1GB.max": "max\n",
    ]

    /// A pure v2 host: cgroup2 at /sys/fs/cgroup, `cgroups` pre-created with control files.
    func buildUnified(cgroups: [String], selfCgroup: String = "0::/user.slice/session-1.scope\n") {
        write("/proc/self/mountinfo", Self.unifiedMountinfo)
        write("/proc/self/cgroup", selfCgroup)
        populate("/sys/fs/cgroup", ["cgroup.controllers": Self.unifiedControllers + "\n",
                                    "cgroup.subtree_control": "\n", "cgroup.procs": "1\n"])
        for cgroup in cgroups {
            var prefix = ""
            for component in cgroup.split(separator: "/") {
                prefix += "/" + component
                populate("/sys/fs/cgroup" + prefix, Self.v2Files.merging(["cgroup.controllers": Self.unifiedControllers + "\n"]) { $1 })
            }
        }
    }
}

/// OCI values whose memberwise initialisers BerthOCI does not make public, from their JSON.
func oci<T: Decodable>(_ json: String, as type: T.Type = T.self) -> T {
    try! JSONDecoder().decode(T.self, from: Data(json.utf8))
}
