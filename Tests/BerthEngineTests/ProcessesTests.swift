@testable import BerthEngine
import Glibc
import XCTest

final class ProcessesTests: XCTestCase {
    func testPSOutputKeepsTheContainersRowsWithWholeCommands() throws {
        let output = """
        UID          PID    PPID  C STIME TTY          TIME CMD
        root           1       0  0 10:00 ?        00:00:01 /sbin/init
        root        4242    4240  0 10:01 ?        00:00:00 sh -c while true;  do sleep 1; done
        nobody      4300    4242  0 10:01 ?        00:00:00 sleep 1

        """
        let top = try Engine.parsePS(output, pids: [4242, 4300])
        XCTAssertEqual(top.titles, ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"])
        XCTAssertEqual(top.processes.map { $0[1] }, ["4242", "4300"])
        XCTAssertEqual(top.processes[0].last, "sh -c while true;  do sleep 1; done")
    }

    func testPSOutputWithoutAPIDColumnIsAnError() {
        XCTAssertThrowsError(try Engine.parsePS("USER COMMAND\nroot sh\n", pids: [1]))
    }

    func testIOStatMapsToDockersReadAndWrite() throws {
        let path = "/tmp/berth-iostat-\(getpid())"
        defer { unlink(path) }
        try "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n".write(toFile: path, atomically: true, encoding: .utf8)
        let (bytes, ios) = Engine.ioStatV2(path)
        XCTAssertEqual(bytes.map { "\($0.major):\($0.minor) \($0.op) \($0.value)" }, ["8:0 read 4096", "8:0 write 8192"])
        XCTAssertEqual(ios.map(\.value), [1, 2])
    }

    func testPausedIsRunningAndMovesOnlyToRunningOrExited() throws {
        var rec = ContainerRecord(id: "abc", name: "/web", created: "2026-01-01T00:00:00Z", image: "busybox",
                                  imageID: "sha256:00", path: "sh", args: [],
                                  config: DockerContainerConfig(image: "busybox"), hostConfig: DockerHostConfig())
        XCTAssertThrowsError(try rec.transition(to: .paused))  // created
        try rec.transition(to: .running)
        try rec.transition(to: .paused)
        XCTAssertTrue(rec.running)
        XCTAssertThrowsError(try rec.transition(to: .restarting))
        try rec.transition(to: .running)
        try rec.transition(to: .paused)
        try rec.transition(to: .exited)
        XCTAssertFalse(rec.running)
    }
}
