import BerthOCI
import Foundation
import Glibc
import XCTest
import CBerthSys

@testable import BerthRuntime

/// Validation happens before anything is created: these need no root.
final class PlanValidationTests: XCTestCase {
    var bundle = ""

    override func setUpWithError() throws {
        bundle = NSTemporaryDirectory() + "berth-plan-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: bundle + "/rootfs", withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: bundle)
    }

    func spec(_ edit: (inout Spec) -> Void = { _ in }) -> Spec {
        var s = Spec.example()
        s.process?.terminal = false
        edit(&s)
        return s
    }

    func plan(_ s: Spec) throws -> ContainerPlan {
        try ContainerPlan(spec: s, bundle: bundle, cgroupViews: [
            CgroupView(name: "memory", hostPath: "/sys/fs/cgroup/memory/x", aliases: []),
            CgroupView(name: "cpu,cpuacct", hostPath: "/sys/fs/cgroup/cpu,cpuacct/x", aliases: ["cpu", "cpuacct"]),
        ])
    }

    func assertInvalid(_ s: Spec, mentions text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try plan(s), file: file, line: line) { error in
            let message = (error as? RuntimeError)?.message ?? "\(error)"
            XCTAssertTrue(message.contains(text), "\"\(message)\" should mention \(text)", file: file, line: line)
        }
    }

    func testExampleSpecIsValidAndResolvesEverything() throws {
        let p = try plan(spec())
        XCTAssertEqual(p.rootfs, bundle + "/rootfs")
        XCTAssertEqual(p.process.rlimits.first?.resource, 7)  // RLIMIT_NOFILE
        XCTAssertNotNil(p.process.caps)
        XCTAssertEqual(p.process.caps!.bounding, (1 << 29) | (1 << 5) | (1 << 10))
        XCTAssertTrue(p.namespaces.create.contains(.mount))
        // Default devices are created since /dev is a tmpfs, not a bind of the host's.
        XCTAssertEqual(Set(p.devices.map(\.path)), ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"])
        XCTAssertTrue(p.steps.contains { $0.kind == Int32(BERTH_SYMLINK) && $0.destination == "/dev/ptmx" })
    }

    func testCgroupMountBecomesTmpfsWithEachHierarchyBoundAndAliases() throws {
        let p = try plan(spec())
        let dests = p.steps.filter { $0.destination.hasPrefix("/sys/fs/cgroup") }.map(\.destination)
        XCTAssertEqual(dests, ["/sys/fs/cgroup", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/cpu,cpuacct",
                               "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup"])
        XCTAssertEqual(p.steps.last { $0.destination == "/sys/fs/cgroup" }?.kind, Int32(BERTH_REMOUNT))
    }

    func testMountOptionsSplitIntoFlagsPropagationAndData() throws {
        let o = try MountOptions(["rbind", "ro", "nosuid", "rslave", "size=10m", "mode=755"], field: "m")
        XCTAssertTrue(o.isBind)
        XCTAssertEqual(o.flags, UInt(MS_BIND | MS_REC | MS_RDONLY | MS_NOSUID))
        XCTAssertEqual(o.propagation, UInt(MS_SLAVE | MS_REC))
        XCTAssertEqual(o.data, ["size=10m", "mode=755"])
        let rw = try MountOptions(["ro", "rw"], field: "m")
        XCTAssertEqual(rw.flags, 0)
    }

    func testUnknownNamespaceIsRejectedByName() {
        assertInvalid(spec { $0.linux?.namespaces?.append(Namespace(type: "foo")) }, mentions: "unknown namespace type \"foo\"")
    }

    func testUnknownCapabilityIsRejectedWithItsSet() {
        assertInvalid(spec { $0.process?.capabilities?.effective = ["CAP_FOO"] },
                      mentions: "process.capabilities.effective: unknown capability \"CAP_FOO\"")
    }

    func testMissingArgsAndRelativeCwdAreRejected() {
        assertInvalid(spec { $0.process?.args = [] }, mentions: "process.args")
        assertInvalid(spec { $0.process?.cwd = "tmp" }, mentions: "process.cwd")
    }

    func testMissingRootfsIsRejected() {
        assertInvalid(spec { $0.root?.path = "nope" }, mentions: "does not exist")
    }

    func testUnknownRlimitAndDuplicateRlimit() {
        assertInvalid(spec { $0.process?.rlimits = [Rlimit(type: "RLIMIT_FOO", hard: 1, soft: 1)] }, mentions: "RLIMIT_FOO")
        assertInvalid(spec { $0.process?.rlimits = [Rlimit(type: "RLIMIT_NOFILE", hard: 1, soft: 1),
                                                     Rlimit(type: "RLIMIT_NOFILE", hard: 2, soft: 2)] },
                      mentions: "set twice")
    }

    func testUserNamespaceNeedsMappings() {
        assertInvalid(spec { $0.linux?.namespaces?.append(Namespace(type: "user")) }, mentions: "linux.uidMappings")
    }

    func testHostnameNeedsUTSNamespace() {
        assertInvalid(spec { $0.linux?.namespaces?.removeAll { $0.type == "uts" } }, mentions: "hostname")
    }

    func testBindSourceMustExist() {
        assertInvalid(spec { $0.mounts?.append(Mount(destination: "/data", type: "bind", source: "/nonexistent-berth",
                                                      options: ["rbind"])) },
                      mentions: "mounts[7].source")
    }

    func testMountDestinationMayNotClimbOut() {
        assertInvalid(spec { $0.mounts?.append(Mount(destination: "/a/../../etc", type: "tmpfs", source: "tmpfs")) },
                      mentions: "\"..\"")
    }

    func testBadSeccompIsRejectedWithField() {
        assertInvalid(spec { $0.linux?.seccomp = Seccomp(defaultAction: "SCMP_ACT_BOGUS") }, mentions: "linux.seccomp")
    }

    func testTimeOffsetsNeedTimeNamespace() {
        assertInvalid(spec { $0.linux?.timeOffsets = ["monotonic": TimeOffset(secs: 1, nanosecs: 0)] }, mentions: "time namespace")
    }

    func testSignalsParseByNameAndNumber() {
        XCTAssertEqual(RuntimeSignal.parse("KILL"), 9)
        XCTAssertEqual(RuntimeSignal.parse("SIGTERM"), 15)
        XCTAssertEqual(RuntimeSignal.parse("9"), 9)
        XCTAssertEqual(RuntimeSignal.parse("RTMIN+2"), 36)
        XCTAssertNil(RuntimeSignal.parse("SIGFOO"))
        XCTAssertNil(RuntimeSignal.parse("0"))
    }

    func testContainerIDsAreChecked() {
        XCTAssertNoThrow(try ContainerStore.validate(id: "abc-1.2_x+y"))
        XCTAssertThrowsError(try ContainerStore.validate(id: "../etc"))
        XCTAssertThrowsError(try ContainerStore.validate(id: ""))
    }
}
