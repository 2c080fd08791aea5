@testable import BerthEngine
import FoundationEssentials
import XCTest

final class ContainerRecordTests: XCTestCase {
    /// A container.json from before monitorPid, restartCount, health and mounts existed.
    func testARecordFromAnOlderBerthdStillDecodes() throws {
        let old = #"""
        {"id":"abc","name":"/web","created":"2026-01-01T00:00:00.000000000Z","image":"busybox",
         "imageID":"sha256:00","path":"sh","args":[],"config":{"Image":"busybox"},"hostConfig":{},
         "status":"exited","pid":0,"exitCode":3,"error":"","startedAt":"2026-01-01T00:00:01Z",
         "finishedAt":"2026-01-01T00:00:02Z","rootfsMounted":false,"runtimeCreated":false}
        """#
        let rec = try JSONDecoder().decode(ContainerRecord.self, from: Data(old.utf8))
        XCTAssertEqual(rec.status, .exited)
        XCTAssertEqual(rec.exitCode, 3)
        XCTAssertEqual(rec.restartCount, 0)
        XCTAssertFalse(rec.manuallyStopped)
        XCTAssertNil(rec.health)
        XCTAssertNil(rec.mounts)
    }

    func testEncodingRoundTrips() throws {
        var rec = ContainerRecord(id: "abc", name: "/web", created: "2026-01-01T00:00:00Z", image: "busybox",
                                  imageID: "sha256:00", path: "sh", args: ["-c", "true"],
                                  config: DockerContainerConfig(image: "busybox"), hostConfig: DockerHostConfig())
        rec.restartCount = 2
        rec.health = HealthState(status: "healthy", failingStreak: 0, log: [])
        let back = try JSONDecoder().decode(ContainerRecord.self, from: JSONEncoder().encode(rec))
        XCTAssertEqual(back.restartCount, 2)
        XCTAssertEqual(back.health, rec.health)
        XCTAssertEqual(back.args, ["-c", "true"])
    }
}
