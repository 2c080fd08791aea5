@testable import BerthEngine
import BerthOS
import XCTest

final class ContainerFiltersTests: XCTestCase {
    static func record(_ name: String, status: ContainerStatus = .exited, exitCode: Int32 = 0,
                       labels: [String: String] = [:], created: String = "2025-01-01T00:00:00.000000000Z",
                       started: Bool = true) -> ContainerRecord {
        var rec = ContainerRecord(id: "abc123" + name, name: "/" + name, created: created, image: "busybox",
                                  imageID: "sha256:feed", path: "sh", args: [],
                                  config: DockerContainerConfig(labels: labels), hostConfig: DockerHostConfig())
        rec.status = status
        rec.exitCode = exitCode
        if started { rec.startedAt = "2025-01-01T00:00:01.000000000Z" }
        return rec
    }

    func matches(_ values: [String: [String]], _ rec: ContainerRecord,
                 _ context: ContainerFilters.Context = .init()) throws -> Bool {
        try ContainerFilters(values).matches(rec, context)
    }

    func testUnknownKeyAndBadValuesAreRejectedWithDockersWording() {
        XCTAssertThrowsError(try ContainerFilters(["bogus": ["1"]])) {
            XCTAssertEqual($0 as? EngineError, EngineError(.invalidArgument, "invalid filter 'bogus'"))
        }
        XCTAssertThrowsError(try ContainerFilters(["status": ["sleeping"]])) {
            XCTAssertEqual(($0 as? EngineError)?.message, "invalid filter 'status=sleeping'")
        }
        XCTAssertThrowsError(try ContainerFilters(["health": ["meh"]])) {
            XCTAssertEqual(($0 as? EngineError)?.message, "Unrecognised filter value for health: meh")
        }
        XCTAssertThrowsError(try ContainerFilters(["exited": ["x"]]))
    }

    func testStatusImpliesAllAndValuesOfOneKeyAreAlternatives() throws {
        XCTAssertTrue(try ContainerFilters(["status": ["exited"]]).impliesAll)
        XCTAssertFalse(try ContainerFilters(["label": ["a"]]).impliesAll)
        let up = Self.record("up", status: .running)
        XCTAssertTrue(try matches(["status": ["exited", "running"]], up))
        XCTAssertFalse(try matches(["status": ["exited"]], up))
    }

    func testLabelValuesMustAllHold() throws {
        let rec = Self.record("web", labels: ["tier": "web", "env": "prod"])
        XCTAssertTrue(try matches(["label": ["tier"]], rec))
        XCTAssertTrue(try matches(["label": ["tier=web", "env=prod"]], rec))
        XCTAssertFalse(try matches(["label": ["tier=web", "env=dev"]], rec))
        XCTAssertFalse(try matches(["label": ["missing"]], rec))
        XCTAssertTrue(try matches(["label": ["x=a=b"]], Self.record("eq", labels: ["x": "a=b"])))
    }

    func testNameAndIDMatchAsDockersRegularExpressions() throws {
        let rec = Self.record("web")
        XCTAssertTrue(try matches(["name": ["we"]], rec))
        XCTAssertTrue(try matches(["name": ["^/web$"]], rec))
        XCTAssertTrue(try matches(["name": ["^web$"]], rec))
        XCTAssertFalse(try matches(["name": ["^eb"]], rec))
        XCTAssertFalse(try matches(["name": ["[unclosed"]], rec))
        XCTAssertTrue(try matches(["id": ["abc1"]], rec))
        XCTAssertFalse(try matches(["id": ["fff"]], rec))
    }

    func testExitedMatchesOnlyContainersThatRanAndStopped() throws {
        XCTAssertTrue(try matches(["exited": ["3"]], Self.record("a", exitCode: 3)))
        XCTAssertFalse(try matches(["exited": ["3"]], Self.record("b", exitCode: 0)))
        XCTAssertFalse(try matches(["exited": ["0"]], Self.record("c", status: .running)))
        XCTAssertFalse(try matches(["exited": ["0"]], Self.record("d", status: .created, started: false)))
    }

    func testAncestorBeforeSinceAndHealthUseTheResolvedContext() throws {
        let rec = Self.record("x", created: "2025-01-01T00:00:05.000000000Z")
        var context = ContainerFilters.Context()
        XCTAssertTrue(try matches(["ancestor": ["busybox:latest"]], rec, context))
        XCTAssertFalse(try matches(["ancestor": ["alpine"]], rec, context))
        context.ancestorImageIDs = ["sha256:feed"]
        XCTAssertTrue(try matches(["ancestor": ["some-tag-of-it"]], rec, context))
        context = .init()
        context.beforeCreated = "2025-01-01T00:00:06.000000000Z"
        XCTAssertTrue(try matches([:], rec, context))
        context.beforeCreated = "2025-01-01T00:00:05.000000000Z"
        XCTAssertFalse(try matches([:], rec, context))
        context = .init()
        context.sinceCreated = "2025-01-01T00:00:04.000000000Z"
        XCTAssertTrue(try matches([:], rec, context))
        XCTAssertTrue(try matches(["health": ["none"]], rec))
        XCTAssertFalse(try matches(["health": ["healthy"]], rec))
    }

    func testPruneFiltersUntilLabelAndNegatedLabel() throws {
        let now = try XCTUnwrap(Timestamp.nanoseconds(rfc3339: "2025-01-01T01:00:00Z"))
        let rec = Self.record("p", labels: ["keep": "1", "suite": "a"], created: "2025-01-01T00:00:00.000000000Z")
        XCTAssertTrue(try ContainerPruneFilters(["until": ["30m"]], now: now).matches(rec))
        XCTAssertFalse(try ContainerPruneFilters(["until": ["2h"]], now: now).matches(rec))
        XCTAssertTrue(try ContainerPruneFilters(["label": ["suite=a"]], now: now).matches(rec))
        XCTAssertFalse(try ContainerPruneFilters(["label!": ["keep"]], now: now).matches(rec))
        XCTAssertTrue(try ContainerPruneFilters(["label!": ["keep=2"]], now: now).matches(rec))
        XCTAssertThrowsError(try ContainerPruneFilters(["status": ["exited"]], now: now))
        XCTAssertThrowsError(try ContainerPruneFilters(["until": ["soon"]], now: now)) {
            XCTAssertEqual(($0 as? EngineError)?.message, "failed to parse value as time or duration: \"soon\"")
        }
    }

    func testDockerTimeTakesUnixSecondsRFC3339AndDurations() throws {
        let now: Int64 = 1_700_000_000_000_000_000
        XCTAssertEqual(try DockerTime.nanoseconds("1700000000", now: now), now)
        XCTAssertEqual(try DockerTime.nanoseconds("1700000000.5", now: now), now + 500_000_000)
        XCTAssertEqual(try DockerTime.nanoseconds("1700000000.000000001", now: now), now + 1)
        XCTAssertEqual(try DockerTime.nanoseconds("2023-11-14T22:13:20Z", now: 0), now)
        XCTAssertEqual(try DockerTime.nanoseconds("2023-11-14T22:13:20.25Z", now: 0), now + 250_000_000)
        XCTAssertEqual(try DockerTime.nanoseconds("2023-11-14T23:13:20+01:00", now: 0), now)
        XCTAssertEqual(try DockerTime.nanoseconds("2023-11-14", now: 0), now - (22 * 3600 + 13 * 60 + 20) * 1_000_000_000)
        XCTAssertEqual(try DockerTime.nanoseconds("10m", now: now), now - 600_000_000_000)
        XCTAssertEqual(try DockerTime.nanoseconds("1h30m", now: now), now - 5_400_000_000_000)
        XCTAssertEqual(try DockerTime.nanoseconds("1.5s", now: now), now - 1_500_000_000)
        for bad in ["", "yesterday", "10x", "2023-13-01", "1.2.3", "2023-11-14T22:13:20Q"] {
            XCTAssertThrowsError(try DockerTime.nanoseconds(bad, now: now), bad)
        }
    }
}
