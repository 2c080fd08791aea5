@testable import BerthCgroups
import BerthOCI
import Foundation
import XCTest

/// Records device programs instead of loading them (a fake tree is no cgroup2 filesystem).
final class RecordingAttacher: DeviceFilterAttacher, @unchecked Sendable {
    private let lock = NSLock()
    private var _attached: [(program: [BPFInstruction], directory: String)] = []
    var attached: [(program: [BPFInstruction], directory: String)] { lock.withLock { _attached } }

    func attach(_ program: [BPFInstruction], license: String, toCgroup directory: String) throws(CgroupError) {
        lock.withLock { _attached.append((program, directory)) }
    }
}

final class UnifiedCgroupTests: XCTestCase {
    private func open(_ tree: FakeCgroupTree, _ cgroupsPath: String? = "/berth/c1",
                      attacher: RecordingAttacher = RecordingAttacher()) throws -> any Cgroup {
        try Cgroups.open(cgroupsPath: cgroupsPath, containerID: "c1", mountinfo: tree.mountinfoPath,
                         selfCgroup: tree.selfCgroupPath, fsRoot: tree.root, deviceFilterAttacher: attacher)
    }

    func testPureV2HostGivesUnifiedCgroup() throws {
        let tree = try FakeCgroupTree()
        tree.buildUnified(cgroups: [])
        let cgroup = try open(tree, nil)
        XCTAssertEqual(cgroup.mode, .unified)
        XCTAssertEqual(cgroup.path, "/berth/c1")
        XCTAssertEqual(cgroup.directories, ["unified": tree.path("/sys/fs/cgroup/berth/c1")])

        let relative = try open(tree, "ctr")
        XCTAssertEqual(relative.path, "/user.slice/session-1.scope/ctr")
        let systemd = try open(tree, "system.slice:berth:c1")
        XCTAssertEqual(systemd.directories["unified"], tree.path("/sys/fs/cgroup/system.slice/berth-c1.scope"))
    }

    func testCreateEnablesControllersInEveryParent() throws {
        let tree = try FakeCgroupTree()
        tree.buildUnified(cgroups: [])
        // What the kernel shows in /berth once the root enabled everything.
        tree.populate("/sys/fs/cgroup/berth", ["cgroup.controllers": FakeCgroupTree.unifiedControllers, "cgroup.subtree_control": "cpu\n"])
        let cgroup = try open(tree)
        try cgroup.create()
        XCTAssertTrue(cgroup.exists())
        XCTAssertEqual(tree.read("/sys/fs/cgroup/cgroup.subtree_control"), "+cpuset +cpu +io +memory +hugetlb +pids +rdma +misc")
        // Already enabled ones are not written again; the leaf itself enables nothing.
        XCTAssertEqual(tree.read("/sys/fs/cgroup/berth/cgroup.subtree_control"), "+cpuset +io +memory +hugetlb +pids +rdma +misc")
        XCTAssertFalse(tree.exists("/sys/fs/cgroup/berth/c1/cgroup.subtree_control"))
    }

    func testApplyWritesExactlyTheV2FilesWithConversions() throws {
        let tree = try FakeCgroupTree()
        tree.buildUnified(cgroups: ["/berth/c1"])
        let attacher = RecordingAttacher()
        let cgroup = try open(tree, attacher: attacher)
        var resources = Resources(
            devices: [.init(allow: false, access: "rwm"), .init(allow: true, type: "c", major: 1, minor: 3, access: "rwm")],
            memory: .init(limit: 50_000_000, reservation: 40_000_000, swap: 100_000_000),
            cpu: .init(shares: 1024, quota: 50_000, period: 100_000, cpus: "0-1", mems: "0"),
            pids: .init(limit: 0),
            blockIO: .init(weight: 500),
            unified: ["memory.high": "45000000"])
        resources.hugepageLimits = [oci(#"{"pageSize": "2MB", "limit": 2097152}"#)]
        resources.blockIO?.throttleWriteIOPSDevice = [oci(#"{"major": 8, "minor": 16, "rate": 300}"#)]
        let before = tree.snapshot("/sys/fs/cgroup")
        try cgroup.apply(resources)
        let changes = FakeCgroupTree.changes(from: before, to: tree.snapshot("/sys/fs/cgroup"))
        XCTAssertEqual(changes, [
            "berth/c1/memory.max": "50000000",
            "berth/c1/memory.low": "40000000",
            "berth/c1/memory.swap.max": "50000000",          // OCI swap is memory+swap
            "berth/c1/cpu.weight": "39",                     // 1 + (1024-2)*9999/262142
            "berth/c1/cpu.max": "50000 100000",
            "berth/c1/cpuset.cpus": "0-1",
            "berth/c1/cpuset.mems": "0",
            "berth/c1/pids.max": "max",
            "berth/c1/io.weight": "4950",                    // 1 + (500-10)*9999/990
            "berth/c1/io.max": "8:16 wiops=300",
            "berth/c1/hugetlb.2MB.max": "2097152",
            "berth/c1/memory.high": "45000000",
        ])
        XCTAssertEqual(attacher.attached.count, 1)
        XCTAssertEqual(attacher.attached.first?.directory, tree.path("/sys/fs/cgroup/berth/c1"))
        XCTAssertEqual(attacher.attached.first?.program, try DeviceFilter.program(for: resources.devices!))
    }

    func testConversions() throws {
        XCTAssertEqual(UnifiedCgroup.cpuWeight(2), 1)
        XCTAssertEqual(UnifiedCgroup.cpuWeight(262_144), 10_000)
        XCTAssertEqual(UnifiedCgroup.cpuWeight(1024), 39)
        XCTAssertEqual(UnifiedCgroup.ioWeight(10), 1)
        XCTAssertEqual(UnifiedCgroup.ioWeight(1000), 10_000)
        XCTAssertEqual(UnifiedCgroup.ioWeight(100), 910)
        XCTAssertEqual(try UnifiedCgroup.swapMax(swap: 0, limit: 100), nil)
        XCTAssertEqual(try UnifiedCgroup.swapMax(swap: -1, limit: 100), "max")
        XCTAssertEqual(try UnifiedCgroup.swapMax(swap: 0, limit: -1), "max")
        XCTAssertEqual(try UnifiedCgroup.swapMax(swap: 300, limit: 100), "200")
        XCTAssertEqual(try UnifiedCgroup.swapMax(swap: 100, limit: 100), "0")
        XCTAssertThrowsError(try UnifiedCgroup.swapMax(swap: 50, limit: 100))
        XCTAssertThrowsError(try UnifiedCgroup.swapMax(swap: 50, limit: 0))
    }

    func testQuotaWithoutPeriodAndUnlimitedQuota() throws {
        let tree = try FakeCgroupTree()
        tree.buildUnified(cgroups: ["/berth/c1"])
        let cgroup = try open(tree)
        try cgroup.apply(Resources(cpu: .init(quota: 20_000)))
        XCTAssertEqual(tree.read("/sys/fs/cgroup/berth/c1/cpu.max"), "20000")
        try cgroup.apply(Resources(cpu: .init(quota: -1, period: 250_000)))
        XCTAssertEqual(tree.read("/sys/fs/cgroup/berth/c1/cpu.max"), "max 250000")
        try cgroup.apply(Resources(memory: .init(limit: -1)))
        XCTAssertEqual(tree.read("/sys/fs/cgroup/berth/c1/memory.max"), "max")
        XCTAssertEqual(tree.read("/sys/fs/cgroup/berth/c1/memory.swap.max"), "max")
    }

    func testUnifiedKeyMustNameAnExistingFileInTheCgroup() throws {
        let tree = try FakeCgroupTree()
        tree.buildUnified(cgroups: ["/berth/c1"])
        let cgroup = try open(tree)
        XCTAssertThrowsError(try cgroup.apply(Resources(unified: ["rdma.max": "mlx4_0 hca_handle=2"]))) { error in
            XCTAssertTrue("\(error)".contains("rdma.max"), "\(error)")
            XCTAssertTrue("\(error)".contains("rdma controller"), "\(error)")
        }
        XCTAssertThrowsError(try cgroup.apply(Resources(unified: ["../cgroup.procs": "1"]))) { error in
            XCTAssertEqual((error as? CgroupError)?.code, .invalidArgument)
        }
    }

    func testRealtimeIsRejectedOnV2() throws {
        let tree = try FakeCgroupTree()
        tree.buildUnified(cgroups: ["/berth/c1"])
        var cpu = Resources.CPU()
        cpu.realtimeRuntime = 1000
        XCTAssertThrowsError(try open(tree).apply(Resources(cpu: cpu)))
    }

    func testFreezeWritesCgroupFreezeAndWaitsForEvents() throws {
        let tree = try FakeCgroupTree()
        tree.buildUnified(cgroups: ["/berth/c1"])
        let cgroup = try open(tree)
        // Without cgroup.events the write is taken as done and cgroup.freeze is the state.
        XCTAssertFalse(cgroup.isFrozen())
        try cgroup.freeze()
        XCTAssertEqual(tree.read("/sys/fs/cgroup/berth/c1/cgroup.freeze"), "1")
        XCTAssertTrue(cgroup.isFrozen())
        try cgroup.thaw()
        XCTAssertEqual(tree.read("/sys/fs/cgroup/berth/c1/cgroup.freeze"), "0")
        XCTAssertFalse(cgroup.isFrozen())

        // With cgroup.events, the state comes from its "frozen" line.
        tree.write("/sys/fs/cgroup/berth/c1/cgroup.events", "populated 1\nfrozen 1\n")
        try cgroup.freeze()
        XCTAssertTrue(cgroup.isFrozen())
    }

    func testKillWritesCgroupKill() throws {
        let tree = try FakeCgroupTree()
        tree.buildUnified(cgroups: ["/berth/c1"])
        let cgroup = try open(tree)
        XCTAssertTrue(try cgroup.kill())
        XCTAssertEqual(tree.read("/sys/fs/cgroup/berth/c1/cgroup.kill"), "1")
    }

    func testPidsRecurseAndDestroyRemovesTree() throws {
        let tree = try FakeCgroupTree()
        tree.buildUnified(cgroups: ["/berth/c1/a/b", "/berth/c1/c"])
        let cgroup = try open(tree)
        try cgroup.add(pid: 10)
        XCTAssertEqual(tree.read("/sys/fs/cgroup/berth/c1/cgroup.procs"), "10")
        tree.write("/sys/fs/cgroup/berth/c1/a/b/cgroup.procs", "11\n12\n")
        tree.write("/sys/fs/cgroup/berth/c1/c/cgroup.procs", "13\n")
        XCTAssertEqual(try cgroup.pids().sorted(), [10, 11, 12, 13])
        try cgroup.destroy()
        XCTAssertFalse(tree.exists("/sys/fs/cgroup/berth/c1"))
        XCTAssertTrue(tree.exists("/sys/fs/cgroup/berth"))
    }

    func testStatsReadV2Counters() throws {
        let tree = try FakeCgroupTree()
        tree.buildUnified(cgroups: ["/berth/c1"])
        tree.write("/sys/fs/cgroup/berth/c1/memory.max", "52428800\n")
        let stats = try open(tree).stats()
        XCTAssertEqual(stats.memory, CgroupStats.Memory(usage: 4096, limit: 52_428_800, maxUsage: 8192, failcnt: 7,
                                                        oomEvents: 1, oomKills: 1, swapUsage: 0,
                                                        stat: ["anon": 4096, "file": 0]))
        XCTAssertEqual(stats.cpu, CgroupStats.CPU(usageTotal: 1_500_000, user: 1_000_000, system: 500_000,
                                                  periods: 2, throttledPeriods: 1, throttledTime: 30_000))
        XCTAssertEqual(stats.pids, CgroupStats.Pids(current: 1, limit: nil))
    }
}
