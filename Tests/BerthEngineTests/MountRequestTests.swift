import XCTest
@testable import BerthEngine

/// `-v`, `--mount` and `--tmpfs` parsed into mount requests with Docker's rules and errors.
final class MountRequestTests: XCTestCase {
    private func message(_ body: () throws(EngineError) -> Void) -> String? {
        do { try body() } catch { return error.message }
        return nil
    }

    func testBindsDistinguishHostPathsNamedAndAnonymousVolumes() throws {
        let r = try SpecBuilder.bindRequests(["/data", "cache:/c:nocopy", "/host/../h:/h:ro,rshared", "v1:/v"])
        XCTAssertEqual(r.map(\.kind), [.volume, .volume, .bind, .volume])
        XCTAssertEqual(r.map(\.source), ["", "cache", "/h", "v1"])
        XCTAssertEqual(r.map(\.destination), ["/data", "/c", "/h", "/v"])
        XCTAssertTrue(r[1].noCopy)
        XCTAssertEqual([r[2].readOnly, r[2].propagation, r[2].mode], [true, "rshared", "ro,rshared"] as [AnyHashable])
        XCTAssertEqual([r[3].mode, r[3].propagation], ["z", ""], "Docker's defaults for a named volume")
        XCTAssertTrue(r.allSatisfy(\.fromBinds))
    }

    func testBindErrorsNameTheProblem() {
        XCTAssertEqual(message { () throws(EngineError) in _ = try SpecBuilder.bindRequests(["a:/x"]) },
                       "\"a\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path")
        XCTAssertEqual(message { () throws(EngineError) in _ = try SpecBuilder.bindRequests(["/a:/x:rw,bogus"]) }, "invalid mode: bogus")
        XCTAssertEqual(message { () throws(EngineError) in _ = try SpecBuilder.bindRequests(["/a:/"]) }, "invalid specification: destination can't be '/'")
        XCTAssertEqual(message { () throws(EngineError) in _ = try SpecBuilder.bindRequests(["/a:/b:ro:x"]) }, "invalid volume specification: '/a:/b:ro:x'")
    }

    func testMountsFollowValidateMountConfig() throws {
        typealias M = DockerHostConfig.MountPoint
        let r = try SpecBuilder.mountRequests([
            M(target: "/v", source: "vol", type: "volume", readOnly: true,
              volumeOptions: .init(noCopy: true, labels: ["a": "b"], subpath: "sub/dir")),
            M(target: "/anon", type: "volume"),
            M(target: "/t", type: "tmpfs", tmpfsOptions: .init(sizeBytes: 2 << 20, mode: 0o700)),
        ])
        XCTAssertEqual([r[0].source, r[0].subpath], ["vol", "sub/dir"])
        XCTAssertTrue(r[0].noCopy && r[0].readOnly)
        XCTAssertEqual(r[0].volumeLabels, ["a": "b"])
        XCTAssertEqual(r[1].source, "")
        XCTAssertEqual(r[2].tmpfsOptions, ["nosuid", "nodev", "noexec", "size=2097152", "mode=700"])

        let cases: [(M, String)] = [
            (M(target: "/x", type: "bind"), "invalid mount config for type \"bind\": field Source must not be empty"),
            (M(target: "/x", source: "/s", type: "bind", volumeOptions: .init()),
             "invalid mount config for type \"bind\": field VolumeOptions must not be specified"),
            (M(target: "/x", source: "v1", type: "volume", bindOptions: .init(propagation: "shared")),
             "invalid mount config for type \"volume\": field BindOptions must not be specified"),
            (M(target: "/x", type: "volume", volumeOptions: .init(subpath: "a")),
             "invalid mount config for type \"volume\": cannot use subpath with an anonymous volume"),
            (M(target: "/x", source: "v1", type: "volume", volumeOptions: .init(subpath: "../up")),
             "invalid mount config for type \"volume\": subpath must be a relative path within the volume"),
            (M(target: "/x", source: "s", type: "tmpfs"), "invalid mount config for type \"tmpfs\": field Source must not be specified"),
            (M(source: "/s", type: "bind"), "invalid mount config for type \"bind\": field Target must not be empty"),
            (M(target: "/x", type: "npipe"), "mount type unknown or not supported: \"npipe\""),
        ]
        for (mount, expected) in cases {
            XCTAssertEqual(message { () throws(EngineError) in _ = try SpecBuilder.mountRequests([mount]) }, expected)
        }
    }

    func testAnonymousVolumeNeedsANameBeforeItBecomesAMount() {
        let anon = SpecBuilder.MountRequest(kind: .volume, source: "", destination: "/d")
        XCTAssertEqual(message { () throws(EngineError) in _ = try SpecBuilder.ociMount(anon, lookups: .init()) },
                       "the anonymous volume at /d was given no name")
    }
}
