@testable import BerthCgroups
import BerthOCI
import Foundation
import XCTest

/// Against the host's real cgroupfs; each test skips unless it runs as root on a host that has
/// what it needs, and removes its cgroups in tearDown even when it fails.
final class RealCgroupTests: XCTestCase {
    private var cleanups: [() -> Void] = []

    override func tearDown() {
        for cleanup in cleanups.reversed() { cleanup() }
        cleanups = []
        super.tearDown()
    }

    private func uniqueName() -> String {
        "berth-test-" + String(UInt64.random(in: 0..<UInt64.max), radix: 16)
    }

    /// Starts `argv` with stdin and stdout on pipes; returns pid, stdin writer, stdout reader.
    private func spawn(_ argv: [String]) throws -> (pid: pid_t, stdin: Int32, stdout: Int32) {
        var input: [Int32] = [0, 0], output: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&input), 0)
        XCTAssertEqual(pipe(&output), 0)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input[0], 0)
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_addclose(&actions, input[1])
        posix_spawn_file_actions_addclose(&actions, output[0])
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for arg in cArgs { free(arg) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, nil, &cArgs, environ)
        close(input[0]); close(output[1])
        guard rc == 0 else { throw CgroupError(.system, "posix_spawn \(argv[0]): \(rc)") }
        cleanups.append { kill(pid, SIGKILL); var status: Int32 = 0; waitpid(pid, &status, 0); close(input[1]); close(output[0]) }
        return (pid, input[1], output[0])
    }

    private func readAll(_ fd: Int32) -> String {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    func testRealV1CgroupTakesMemoryLimitAndFreezes() throws {
        try XCTSkipUnless(getuid() == 0, "needs root")
        try XCTSkipUnless(FileManager.default.fileExists(atPath: "/sys/fs/cgroup/memory/memory.limit_in_bytes"), "needs a v1 memory hierarchy")
        let name = uniqueName()
        let cgroup = try Cgroups.open(cgroupsPath: "/" + name, containerID: name)
        cleanups.append { try? cgroup.destroy() }

        try cgroup.create()
        XCTAssertTrue(cgroup.exists())
        try cgroup.apply(Resources(memory: .init(limit: 50 * 1024 * 1024), pids: .init(limit: 20)))
        XCTAssertEqual(try String(contentsOfFile: "/sys/fs/cgroup/memory/\(name)/memory.limit_in_bytes", encoding: .utf8), "52428800\n")

        let child = try spawn(["/bin/sleep", "30"])
        try cgroup.add(pid: child.pid)
        XCTAssertEqual(try cgroup.pids(), [child.pid])
        if let unified = cgroup.directories["unified"] {
            XCTAssertEqual(try String(contentsOfFile: unified + "/cgroup.procs", encoding: .utf8), "\(child.pid)\n")
        }
        try cgroup.freeze()
        XCTAssertTrue(cgroup.isFrozen())
        try cgroup.thaw()
        XCTAssertFalse(cgroup.isFrozen())

        let stats = try cgroup.stats()
        XCTAssertEqual(stats.memory?.limit, 52_428_800)
        XCTAssertEqual(stats.pids, CgroupStats.Pids(current: 1, limit: 20))

        kill(child.pid, SIGKILL)
        var status: Int32 = 0
        waitpid(child.pid, &status, 0)
        try cgroup.destroy()
        XCTAssertFalse(cgroup.exists())
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/sys/fs/cgroup/memory/\(name)"))
    }

    /// The unified hierarchy needs no controller for freeze, kill or device programs, so the
    /// v2 code runs for real even on this hybrid host.
    private func realUnifiedCgroup(attacher: any DeviceFilterAttacher = KernelDeviceFilterAttacher()) throws -> UnifiedCgroup {
        try XCTSkipUnless(getuid() == 0, "needs root")
        let mounts = MountinfoEntry.parse(try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8))
        let layout = try CgroupLayout(mounts: mounts)
        let hierarchy = try XCTUnwrap(layout.unified, "needs a cgroup2 mount")
        let cgroup = UnifiedCgroup(hierarchy: hierarchy, path: "/" + uniqueName(), deviceFilterAttacher: attacher)
        try CgroupFiles.makeDirectory(cgroup.directory)
        cleanups.append { try? cgroup.destroy() }
        return cgroup
    }

    func testRealCgroup2FreezeAndKill() throws {
        let cgroup = try realUnifiedCgroup()
        try XCTSkipUnless(FileManager.default.fileExists(atPath: cgroup.directory + "/cgroup.kill"), "needs Linux >= 5.14")
        let child = try spawn(["/bin/sleep", "30"])
        try cgroup.add(pid: child.pid)
        try cgroup.freeze()
        XCTAssertTrue(cgroup.isFrozen())
        try cgroup.thaw()
        XCTAssertFalse(cgroup.isFrozen())
        XCTAssertTrue(try cgroup.kill())
        var status: Int32 = 0
        XCTAssertEqual(waitpid(child.pid, &status, 0), child.pid)
        XCTAssertEqual(status & 0x7f, SIGKILL)
        try cgroup.destroy()
        XCTAssertFalse(cgroup.exists())
    }

    func testRealDeviceFilterPassesVerifierAndEnforcesRules() throws {
        let cgroup = try realUnifiedCgroup()
        let rules: [Resources.DeviceCgroup] = [
            .init(allow: false, access: "rwm"),
            .init(allow: true, type: "c", major: 1, minor: 3, access: "rwm"),   // /dev/null
            .init(allow: true, type: "c", major: 1, minor: 5, access: "rwm"),   // /dev/zero
            .init(allow: false, type: "c", major: 1, minor: 5, access: "w"),
        ]
        // Twice: the second apply must replace the first program, not stack on it.
        try cgroup.apply(Resources(devices: [.init(allow: true)]))
        try cgroup.apply(Resources(devices: rules))
        let dirFD = open(cgroup.directory, O_RDONLY | O_DIRECTORY)
        defer { close(dirFD) }
        XCTAssertEqual(try KernelDeviceFilterAttacher().attachedPrograms(dirFD, directory: cgroup.directory).count, 1)

        let script = """
            read go
            cat /dev/null && echo null-ok
            head -c1 /dev/zero >/dev/null 2>&1 && echo zero-read-ok
            (: > /dev/zero) 2>/dev/null && echo zero-write-ok || echo zero-write-denied
            (head -c1 /dev/urandom >/dev/null) 2>/dev/null && echo urandom-ok || echo urandom-denied
            """
        let child = try spawn(["/bin/sh", "-c", script])
        try cgroup.add(pid: child.pid)
        _ = write(child.stdin, "go\n", 3)
        close(child.stdin)
        let output = readAll(child.stdout)
        var status: Int32 = 0
        waitpid(child.pid, &status, 0)
        XCTAssertEqual(output, "null-ok\nzero-read-ok\nzero-write-denied\nurandom-denied\n")
    }
}
