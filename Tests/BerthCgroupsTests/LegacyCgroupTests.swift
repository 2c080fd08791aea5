@testable import BerthCgroups
import BerthOCI
import XCTest

final class LegacyCgroupTests: XCTestCase {
    private func open(_ tree: FakeCgroupTree, _ cgroupsPath: String? = "/berth/c1") throws -> any Cgroup {
        try Cgroups.open(cgroupsPath: cgroupsPath, containerID: "c1", mountinfo: tree.mountinfoPath,
                         selfCgroup: tree.selfCgroupPath, fsRoot: tree.root)
    }

    func testHybridHostGivesV1CgroupWithUnifiedMember() throws {
        let tree = try FakeCgroupTree()
        tree.buildHybrid(cgroups: [])
        let cgroup = try open(tree, nil)
        XCTAssertEqual(cgroup.mode, .hybrid)
        XCTAssertEqual(cgroup.path, "/berth/c1")
        XCTAssertEqual(cgroup.directories["memory"], tree.path("/sys/fs/cgroup/memory/berth/c1"))
        XCTAssertEqual(cgroup.directories["name=systemd"], tree.path("/sys/fs/cgroup/systemd/berth/c1"))
        XCTAssertEqual(cgroup.directories["unified"], tree.path("/sys/fs/cgroup/unified/berth/c1"))
        XCTAssertEqual(cgroup.directories.count, 10)
    }

    func testRelativePathFollowsOwnCgroupPerHierarchy() throws {
        let tree = try FakeCgroupTree()
        tree.buildHybrid(cgroups: [])
        let cgroup = try open(tree, "ctr")
        // This machine's memory cgroup differs from the others (see /proc/self/cgroup).
        XCTAssertEqual(cgroup.directories["memory"], tree.path("/sys/fs/cgroup/memory/process_api/1aa70a15dfd674ae38766c0fe0c11709/ctr"))
        XCTAssertEqual(cgroup.directories["cpu"], tree.path("/sys/fs/cgroup/cpu/ctr"))
        XCTAssertEqual(cgroup.directories["unified"], tree.path("/sys/fs/cgroup/unified/ctr"))
        XCTAssertEqual(cgroup.path, "/ctr")  // the pids hierarchy
    }

    func testCreateMakesDirectoriesInEveryHierarchyAndInitialisesCpusets() throws {
        let tree = try FakeCgroupTree()
        tree.buildHybrid(cgroups: [])
        // The kernel gives a new cpuset directory empty cpus/mems files; emulate for the levels.
        tree.populate("/sys/fs/cgroup/cpuset/berth", ["cpuset.cpus": "\n", "cpuset.mems": "\n"])
        tree.populate("/sys/fs/cgroup/cpuset/berth/c1", ["cpuset.cpus": "\n", "cpuset.mems": "\n"])
        let cgroup = try open(tree)
        XCTAssertFalse(cgroup.exists())
        try cgroup.create()
        XCTAssertTrue(cgroup.exists())
        for hierarchy in ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd", "unified"] {
            XCTAssertTrue(tree.exists("/sys/fs/cgroup/\(hierarchy)/berth/c1"), hierarchy)
        }
        XCTAssertEqual(tree.read("/sys/fs/cgroup/cpuset/berth/cpuset.cpus"), "0-1")
        XCTAssertEqual(tree.read("/sys/fs/cgroup/cpuset/berth/cpuset.mems"), "0")
        XCTAssertEqual(tree.read("/sys/fs/cgroup/cpuset/berth/c1/cpuset.cpus"), "0-1")
        XCTAssertEqual(tree.read("/sys/fs/cgroup/cpuset/berth/c1/cpuset.mems"), "0")
        // No controller is enabled in the hybrid unified hierarchy just for directories.
        XCTAssertEqual(tree.read("/sys/fs/cgroup/unified/cgroup.subtree_control"), "\n")
    }

    func testCpusetInitKeepsExistingValues() throws {
        let tree = try FakeCgroupTree()
        tree.buildHybrid(cgroups: ["/berth/c1"])
        tree.write("/sys/fs/cgroup/cpuset/berth/cpuset.cpus", "1\n")
        let cgroup = try open(tree)
        try cgroup.create()
        XCTAssertEqual(tree.read("/sys/fs/cgroup/cpuset/berth/cpuset.cpus"), "1\n")
        XCTAssertEqual(tree.read("/sys/fs/cgroup/cpuset/berth/c1/cpuset.cpus"), "1")
        XCTAssertEqual(tree.read("/sys/fs/cgroup/cpuset/berth/c1/cpuset.mems"), "0")
    }

    func testApplyWritesExactlyTheV1Files() throws {
        let tree = try FakeCgroupTree()
        tree.buildHybrid(cgroups: ["/berth/c1"])
        let cgroup = try open(tree)
        var resources = Resources(
            devices: [.init(allow: true, type: "c", major: 1, minor: 3, access: "rwm")],
            memory: .init(limit: 50_000_000, reservation: 40_000_000, swap: 100_000_000, swappiness: 10, disableOOMKiller: true),
            cpu: .init(shares: 512, quota: 50_000, period: 100_000, cpus: "0", mems: "0"),
            pids: .init(limit: 100),
            blockIO: .init(weight: 300),
            hugepageLimits: nil)
        resources.cpu?.realtimePeriod = 1_000_000
        resources.cpu?.realtimeRuntime = 950_000
        resources.blockIO?.throttleReadBpsDevice = [oci(#"{"major": 8, "minor": 0, "rate": 1048576}"#)]
        let before = tree.snapshot("/sys/fs/cgroup")
        try cgroup.apply(resources)
        let changes = FakeCgroupTree.changes(from: before, to: tree.snapshot("/sys/fs/cgroup"))
        XCTAssertEqual(changes, [
            "memory/berth/c1/memory.limit_in_bytes": "50000000",
            "memory/berth/c1/memory.memsw.limit_in_bytes": "100000000",
            "memory/berth/c1/memory.soft_limit_in_bytes": "40000000",
            "memory/berth/c1/memory.swappiness": "10",
            "memory/berth/c1/memory.oom_control": "1",
            "cpu/berth/c1/cpu.shares": "512",
            "cpu/berth/c1/cpu.cfs_quota_us": "50000",
            "cpu/berth/c1/cpu.rt_runtime_us": "950000",
            "cpuset/berth/c1/cpuset.cpus": "0",
            "cpuset/berth/c1/cpuset.mems": "0",
            "pids/berth/c1/pids.max": "100",
            "blkio/berth/c1/blkio.bfq.weight": "300",
            "blkio/berth/c1/blkio.throttle.read_bps_device": "8:0 1048576",
            "devices/berth/c1/devices.deny": "a",
            "devices/berth/c1/devices.allow": "c 1:3 rwm",
        ])
        // cpu.cfs_period_us and cpu.rt_period_us were written with the value they already had.
        XCTAssertEqual(tree.read("/sys/fs/cgroup/cpu/berth/c1/cpu.cfs_period_us"), "100000")
        XCTAssertEqual(tree.read("/sys/fs/cgroup/cpu/berth/c1/cpu.rt_period_us"), "1000000")
    }

    func testPidsLimitZeroOrNegativeMeansMax() throws {
        let tree = try FakeCgroupTree()
        tree.buildHybrid(cgroups: ["/berth/c1"])
        let cgroup = try open(tree)
        tree.write("/sys/fs/cgroup/pids/berth/c1/pids.max", "5")
        try cgroup.apply(Resources(pids: .init(limit: -1)))
        XCTAssertEqual(tree.read("/sys/fs/cgroup/pids/berth/c1/pids.max"), "max")
    }

    func testNothingRequestedWritesNothing() throws {
        let tree = try FakeCgroupTree()
        tree.buildHybrid(cgroups: ["/berth/c1"])
        let cgroup = try open(tree)
        let before = tree.snapshot()
        try cgroup.apply(Resources(memory: .init(), cpu: .init(), blockIO: .init()))
        XCTAssertEqual(FakeCgroupTree.changes(from: before, to: tree.snapshot()), [:])
    }

    func testMemoryWriteOrderFollowsCurrentMemsw() throws {
        // The kernel keeps memsw >= limit; a directory in place of memory.limit_in_bytes makes
        // that write fail, which shows what was written before it.
        let tree = try FakeCgroupTree()
        tree.buildHybrid(cgroups: ["/berth/c1"])
        let cgroup = try open(tree)
        let dir = "/sys/fs/cgroup/memory/berth/c1/"
        tree.write(dir + "memory.memsw.limit_in_bytes", "200\n")
        try FileManager.default.removeItem(atPath: tree.path(dir + "memory.limit_in_bytes"))
        try FileManager.default.createDirectory(atPath: tree.path(dir + "memory.limit_in_bytes"), withIntermediateDirectories: false)
        // Raising above memsw 200: memsw first, then the limit (which fails, being a directory).
        XCTAssertThrowsError(try cgroup.apply(Resources(memory: .init(limit: 300, swap: 600)))) { error in
            XCTAssertTrue("\(error)".contains("memory.limit_in_bytes"), "\(error)")
        }
        XCTAssertEqual(tree.read(dir + "memory.memsw.limit_in_bytes"), "600")
        // Lowering below memsw 600: the limit first, which fails before memsw is touched.
        XCTAssertThrowsError(try cgroup.apply(Resources(memory: .init(limit: 100, swap: 150))))
        XCTAssertEqual(tree.read(dir + "memory.memsw.limit_in_bytes"), "600")
    }

    func testMissingMemswFollowsRunc() throws {
        let tree = try FakeCgroupTree()
        tree.buildHybrid(cgroups: ["/berth/c1"])
        let dir = "/sys/fs/cgroup/memory/berth/c1/"
        try FileManager.default.removeItem(atPath: tree.path(dir + "memory.memsw.limit_in_bytes"))
        let cgroup = try open(tree)
        try cgroup.apply(Resources(memory: .init(limit: 1000, swap: -1)))
        try cgroup.apply(Resources(memory: .init(limit: 1000, swap: 1000)))
        XCTAssertEqual(tree.read(dir + "memory.limit_in_bytes"), "1000")
        XCTAssertThrowsError(try cgroup.apply(Resources(memory: .init(limit: 1000, swap: 2000)))) { error in
            XCTAssertTrue("\(error)".contains("memory.memsw.limit_in_bytes"), "\(error)")
        }
    }

    func testWriteErrorNamesFileAndValue() throws {
        let tree = try FakeCgroupTree()
        tree.buildHybrid(cgroups: ["/berth/c1"])
        try FileManager.default.removeItem(atPath: tree.path("/sys/fs/cgroup/pids/berth/c1/pids.max"))
        let cgroup = try open(tree)
        XCTAssertThrowsError(try cgroup.apply(Resources(pids: .init(limit: 7)))) { error in
            XCTAssertEqual("\(error)", "cgroup: writing \"7\" to \(tree.path("/sys/fs/cgroup/pids/berth/c1/pids.max")): No such file or directory")
        }
    }

    func testUnifiedKeysAreRejectedOnV1() throws {
        let tree = try FakeCgroupTree()
        tree.buildHybrid(cgroups: ["/berth/c1"])
        let cgroup = try open(tree)
        XCTAssertThrowsError(try cgroup.apply(Resources(unified: ["memory.high": "100"]))) { error in
            XCTAssertEqual((error as? CgroupError)?.code, .unsupported)
            XCTAssertTrue("\(error)".contains("memory.high"))
        }
    }

    func testHugepagesGoToUnifiedWhenOnlyItHasHugetlb() throws {
        let tree = try FakeCgroupTree()
        tree.buildHybrid(cgroups: ["/berth/c1"])
        let cgroup = try open(tree)
        var resources = Resources()
        resources.hugepageLimits = [oci(#"{"pageSize": "2MB", "limit": 4194304}"#)]
        try cgroup.apply(resources)
        XCTAssertEqual(tree.read("/sys/fs/cgroup/unified/berth/c1/hugetlb.2MB.max"), "4194304")
        XCTAssertEqual(tree.read("/sys/fs/cgroup/unified/cgroup.subtree_control"), "+hugetlb")
        XCTAssertEqual(tree.read("/sys/fs/cgroup/unified/berth/cgroup.subtree_control"), "\n")  // it lists no controllers
    }

    func testDeviceRulesBecomeV1Lines() throws {
        let rules: [Resources.DeviceCgroup] = [
            .init(allow: false, access: "rwm"),
            .init(allow: true, type: "c", major: 1, minor: 3, access: "rwm"),
            .init(allow: true, type: "c", major: 136, minor: nil, access: "rw"),
            .init(allow: true, type: "b", major: -1, minor: -1, access: "m"),
            .init(allow: true, type: "a", major: 10, minor: 200, access: "rw"),
            .init(allow: true),
        ]
        let writes = try LegacyCgroup.deviceWrites(rules)
        XCTAssertEqual(writes.map { "\($0.file) \($0.value)" }, [
            "devices.deny a",
            "devices.deny a *:* rwm",
            "devices.allow c 1:3 rwm",
            "devices.allow c 136:* rw",
            "devices.allow b *:* m",
            "devices.allow c 10:200 rw",
            "devices.allow b 10:200 rw",
            "devices.allow a *:* rwm",
        ])
        XCTAssertThrowsError(try LegacyCgroup.deviceWrites([.init(allow: true, type: "x")]))
        XCTAssertThrowsError(try LegacyCgroup.deviceWrites([.init(allow: true, type: "c", access: "rwx")]))
    }

    func testFreezeAndThawWriteFreezerState() throws {
        let tree = try FakeCgroupTree()
        tree.buildHybrid(cgroups: ["/berth/c1"])
        let cgroup = try open(tree)
        XCTAssertFalse(cgroup.isFrozen())
        try cgroup.freeze()
        XCTAssertEqual(tree.read("/sys/fs/cgroup/freezer/berth/c1/freezer.state"), "FROZEN")
        XCTAssertTrue(cgroup.isFrozen())
        try cgroup.thaw()
        XCTAssertEqual(tree.read("/sys/fs/cgroup/freezer/berth/c1/freezer.state"), "THAWED")
        XCTAssertFalse(cgroup.isFrozen())
        XCTAssertFalse(try cgroup.kill())  // v1 has no cgroup.kill
    }

    func testAddWritesPidEverywhereAndPidsRecurse() throws {
        let tree = try FakeCgroupTree()
        tree.buildHybrid(cgroups: ["/berth/c1", "/berth/c1/sub/deeper"])
        let cgroup = try open(tree)
        try cgroup.add(pid: 4242)
        for hierarchy in ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd", "unified"] {
            XCTAssertEqual(tree.read("/sys/fs/cgroup/\(hierarchy)/berth/c1/cgroup.procs"), "4242", hierarchy)
        }
        tree.write("/sys/fs/cgroup/pids/berth/c1/cgroup.procs", "4242\n4243\n")
        tree.write("/sys/fs/cgroup/pids/berth/c1/sub/cgroup.procs", "5000\n")
        tree.write("/sys/fs/cgroup/pids/berth/c1/sub/deeper/cgroup.procs", "6000\n6001\n")
        XCTAssertEqual(try cgroup.pids().sorted(), [4242, 4243, 5000, 6000, 6001])
    }

    func testDestroyRemovesDescendantsAndSelfEverywhere() throws {
        let tree = try FakeCgroupTree()
        tree.buildHybrid(cgroups: ["/berth/c1/sub/deeper", "/berth/other"])
        let cgroup = try open(tree)
        try cgroup.destroy()
        for hierarchy in ["cpu", "memory", "systemd", "unified"] {
            XCTAssertFalse(tree.exists("/sys/fs/cgroup/\(hierarchy)/berth/c1"), hierarchy)
            XCTAssertTrue(tree.exists("/sys/fs/cgroup/\(hierarchy)/berth/other"), hierarchy)
        }
        XCTAssertFalse(cgroup.exists())
        try cgroup.destroy()  // already gone is fine
    }

    func testStatsReadV1Counters() throws {
        let tree = try FakeCgroupTree()
        tree.buildHybrid(cgroups: ["/berth/c1"])
        tree.write("/sys/fs/cgroup/memory/berth/c1/memory.limit_in_bytes", "52428800\n")
        tree.write("/sys/fs/cgroup/pids/berth/c1/pids.max", "100\n")
        let stats = try open(tree).stats()
        let memory = try XCTUnwrap(stats.memory)
        XCTAssertEqual(memory.usage, 1_048_576)
        XCTAssertEqual(memory.limit, 52_428_800)
        XCTAssertEqual(memory.maxUsage, 2_097_152)
        XCTAssertEqual(memory.failcnt, 3)
        XCTAssertEqual(memory.oomKills, 2)
        XCTAssertEqual(memory.swapUsage, 262_144)
        XCTAssertEqual(memory.stat["rss"], 8192)
        let cpu = try XCTUnwrap(stats.cpu)
        XCTAssertEqual(cpu.usageTotal, 123_456_789)
        let tick = UInt64(1_000_000_000 / sysconf(Int32(_SC_CLK_TCK)))
        XCTAssertEqual(cpu.user, 250 * tick)
        XCTAssertEqual(cpu.system, 100 * tick)
        XCTAssertEqual(cpu.throttledPeriods, 1)
        XCTAssertEqual(stats.pids, CgroupStats.Pids(current: 3, limit: 100))

        tree.write("/sys/fs/cgroup/memory/berth/c1/memory.limit_in_bytes", "9223372036854771712\n")
        tree.write("/sys/fs/cgroup/pids/berth/c1/pids.max", "max\n")
        let unlimited = try open(tree).stats()
        XCTAssertNil(unlimited.memory?.limit)
        XCTAssertNil(unlimited.pids?.limit)
    }
}
