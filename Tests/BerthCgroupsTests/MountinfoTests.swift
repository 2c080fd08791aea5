@testable import BerthCgroups
import XCTest

final class MountinfoTests: XCTestCase {
    func testParsesThisMachinesHybridMountinfo() throws {
        let entries = MountinfoEntry.parse(FakeCgroupTree.hybridMountinfo)
        XCTAssertEqual(entries.count, 12)
        let cpu = try XCTUnwrap(entries.first { $0.mountPoint == "/sys/fs/cgroup/cpu" })
        XCTAssertEqual(cpu.fsType, "cgroup")
        XCTAssertEqual(cpu.root, "/")
        XCTAssertEqual(cpu.superOptions, ["rw", "cpu"])
        let sys = try XCTUnwrap(entries.first)
        XCTAssertEqual(sys.fsType, "sysfs")  // optional field "shared:7" skipped
        XCTAssertEqual(sys.source, "sysfs")

        let layout = try CgroupLayout(mounts: entries)
        XCTAssertEqual(layout.mode, .hybrid)
        XCTAssertEqual(layout.legacy.map(\.name),
                       ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "name=systemd"])
        XCTAssertEqual(layout.unified?.mountPoint, "/sys/fs/cgroup/unified")
        XCTAssertEqual(layout.legacyHierarchy(for: "memory")?.mountPoint, "/sys/fs/cgroup/memory")
    }

    func testCombinedControllersShareOneHierarchy() throws {
        let text = """
            30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,cpu,cpuacct
            31 25 0:27 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid - cgroup cgroup rw,net_cls,net_prio
            32 25 0:28 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
            33 25 0:29 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
            """
        let layout = try CgroupLayout(mounts: MountinfoEntry.parse(text), fsRoot: "/tmp/x")
        XCTAssertEqual(layout.mode, .legacy)
        XCTAssertNil(layout.unified)
        XCTAssertEqual(layout.legacy.map(\.controllers), [["cpu", "cpuacct"], ["net_cls", "net_prio"], ["name=systemd"], ["memory"]])
        XCTAssertEqual(layout.legacyHierarchy(for: "cpuacct")?.mountPoint, "/tmp/x/sys/fs/cgroup/cpu,cpuacct")
        XCTAssertEqual(layout.legacyHierarchy(for: "cpu"), layout.legacyHierarchy(for: "cpuacct"))
    }

    func testPureV2IsUnified() throws {
        let layout = try CgroupLayout(mounts: MountinfoEntry.parse(FakeCgroupTree.unifiedMountinfo))
        XCTAssertEqual(layout.mode, .unified)
        XCTAssertEqual(layout.legacy, [])
        XCTAssertEqual(layout.unified?.mountPoint, "/sys/fs/cgroup")
        XCTAssertTrue(layout.unified?.isUnified == true)
    }

    func testNoCgroupMountIsAnError() {
        XCTAssertThrowsError(try CgroupLayout(mounts: MountinfoEntry.parse("22 1 0:21 / /sys rw - sysfs sysfs rw"))) { error in
            XCTAssertEqual((error as? CgroupError)?.code, .unsupported)
        }
    }

    func testHostMountsWinOverContainerRootfsCopies() throws {
        // A container's rootfs shows the same hierarchy again with a non-root mount root.
        let text = """
            90 80 0:32 /docker/abc /var/lib/docker/overlay2/x/merged/sys/fs/cgroup/memory ro - cgroup cgroup rw,memory
            35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
            91 80 0:38 / /var/lib/docker/overlay2/x/merged/sys/fs/cgroup rw - cgroup2 cgroup2 rw
            41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
            """
        let layout = try CgroupLayout(mounts: MountinfoEntry.parse(text))
        XCTAssertEqual(layout.legacy.count, 1)
        XCTAssertEqual(layout.legacy.first?.mountPoint, "/sys/fs/cgroup/memory")
        XCTAssertEqual(layout.legacy.first?.mountRoot, "/")
        XCTAssertEqual(layout.unified?.mountPoint, "/sys/fs/cgroup/unified")
    }

    func testMountRootIsStrippedFromCgroupPaths() {
        let hierarchy = CgroupHierarchy(mountPoint: "/sys/fs/cgroup/memory", mountRoot: "/docker/abc", controllers: ["memory"])
        XCTAssertEqual(hierarchy.directory(of: "/docker/abc/berth/x"), "/sys/fs/cgroup/memory/berth/x")
        XCTAssertEqual(hierarchy.directory(of: "/docker/abc"), "/sys/fs/cgroup/memory")
        XCTAssertEqual(hierarchy.directory(of: "/other"), "/sys/fs/cgroup/memory/other")
    }

    func testOctalEscapesInMountPoints() {
        let entries = MountinfoEntry.parse(#"50 31 0:40 / /mnt/my\040cgroups\134x rw - cgroup2 cgroup2 rw"#)
        XCTAssertEqual(entries.first?.mountPoint, #"/mnt/my cgroups\x"#)
    }

    func testParsesProcSelfCgroup() {
        let own = ProcessCgroups.parse(FakeCgroupTree.hybridSelfCgroup)
        XCTAssertEqual(own.unified, "/")
        XCTAssertEqual(own.legacyPath(for: ["memory"]), "/process_api/1aa70a15dfd674ae38766c0fe0c11709")
        XCTAssertEqual(own.legacyPath(for: ["name=systemd"]), "/")
        XCTAssertEqual(own.legacyPath(for: ["cpu", "cpuacct"]), "/")
        XCTAssertNil(own.legacyPath(for: ["hugetlb"]))
        // A path may contain ':'.
        XCTAssertEqual(ProcessCgroups.parse("0::/a:b\n").unified, "/a:b")
    }
}
