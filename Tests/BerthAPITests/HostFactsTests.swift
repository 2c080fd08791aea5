import BerthTestSupport
import XCTest

@testable import BerthAPI
import BerthOS

final class HostFactsTests: XCTestCase {
    func testCgroupVersionFromMountinfo() {
        let hybrid = """
            30 23 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
            31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
            32 30 0:28 / /sys/fs/cgroup/memory rw,nosuid shared:11 - cgroup cgroup rw,memory
            """
        XCTAssertEqual(HostFacts.cgroupVersion(mountinfo: hybrid), "1")
        let unified = "29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate"
        XCTAssertEqual(HostFacts.cgroupVersion(mountinfo: unified), "2")
    }

    func testOSReleaseAndMeminfo() {
        let release = HostFacts.parseOSRelease("""
            PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
            NAME='Debian GNU/Linux'
            VERSION_ID="12"
            # comment
            ID=debian
            """)
        XCTAssertEqual(release["PRETTY_NAME"], "Debian GNU/Linux 12 (bookworm)")
        XCTAssertEqual(release["NAME"], "Debian GNU/Linux")
        XCTAssertEqual(release["VERSION_ID"], "12")
        XCTAssertEqual(release["ID"], "debian")
        XCTAssertEqual(HostFacts.memTotal(meminfo: "MemTotal:       24681472 kB\nMemFree: 1 kB\n"), 24_681_472 * 1024)
    }

    func testResourceSupportFromAFakeUnifiedTree() throws {
        let dir = try TemporaryDirectory()
        try "cpuset cpu io memory pids\n".write(toFile: dir.path + "/cgroup.controllers")
        let r = HostFacts.resourceSupport(cgroupVersion: "2", cgroupRoot: dir.path)
        XCTAssertTrue(r.memoryLimit && r.cpuCfsQuota && r.cpuSet && r.pidsLimit)
        XCTAssertFalse(r.oomKillDisable)
    }

    func testArchitectureNamesAndTimestamps() {
        XCTAssertEqual(HostFacts.goArchitecture("x86_64"), "amd64")
        XCTAssertEqual(HostFacts.goArchitecture("aarch64"), "arm64")
        XCTAssertEqual(Timestamp.format(seconds: 1_748_606_683, nanoseconds: 1_234), "2025-05-30T12:04:43.000001234Z")
    }
}
