import XCTest
@testable import berth
import BerthClient

final class ArgumentsTests: XCTestCase {
    let runOptions = RunCommands.run.options

    func parse(_ args: [String], interspersed: Bool = false) throws -> Arguments {
        try Arguments.parse(args, options: runOptions, interspersed: interspersed)
    }

    func testClusteredShorthandBooleansSetEach() throws {
        let a = try parse(["-it", "busybox", "sh"])
        XCTAssertTrue(a.flag("interactive"))
        XCTAssertTrue(a.flag("tty"))
        XCTAssertEqual(a.positionals, ["busybox", "sh"])
    }

    func testRepeatedListOptionKeepsEveryValueInOrder() throws {
        let a = try parse(["-e", "A=1", "-eB=2", "--env", "C=3", "--env=D=4", "busybox"])
        XCTAssertEqual(a.list("env"), ["A=1", "B=2", "C=3", "D=4"])
    }

    func testLongValueWithEqualsOrSeparateArgument() throws {
        XCTAssertEqual(try parse(["--name=x", "busybox"]).value("name"), "x")
        XCTAssertEqual(try parse(["--name", "y", "busybox"]).value("name"), "y")
        // A value may itself start with a dash.
        XCTAssertEqual(try parse(["--entrypoint", "-x", "busybox"]).value("entrypoint"), "-x")
    }

    func testOptionsEndAtTheImageForRun() throws {
        let a = try parse(["--rm", "busybox", "ls", "-la", "--rm"])
        XCTAssertTrue(a.flag("rm"))
        XCTAssertEqual(a.positionals, ["busybox", "ls", "-la", "--rm"])
    }

    func testInterspersedOptionsAfterPositionals() throws {
        let a = try Arguments.parse(["web", "-f", "--tail", "3"], options: ContainerCommands.logs.options)
        XCTAssertEqual(a.positionals, ["web"])
        XCTAssertTrue(a.flag("follow"))
        XCTAssertEqual(a.value("tail"), "3")
    }

    func testShorthandValueClusterTakesTheRestOfTheWord() throws {
        let a = try parse(["-dp8080:80", "busybox"])
        XCTAssertTrue(a.flag("detach"))
        XCTAssertEqual(a.list("publish"), ["8080:80"])
    }

    func testBooleanWithExplicitFalse() throws {
        XCTAssertFalse(try parse(["--rm=false", "busybox"]).flag("rm"))
        XCTAssertThrowsError(try parse(["--rm=maybe", "busybox"]))
    }

    func testDoubleDashEndsOptions() throws {
        let a = try Arguments.parse(["--", "-f"], options: ContainerCommands.rm.options)
        XCTAssertEqual(a.positionals, ["-f"])
        XCTAssertFalse(a.flag("force"))
    }

    func testUnknownAndIncompleteFlagsUseDockersWording() {
        XCTAssertThrowsError(try parse(["--bogus"])) { XCTAssertEqual(($0 as? UsageError)?.message, "unknown flag: --bogus") }
        XCTAssertThrowsError(try parse(["-Z"])) { XCTAssertEqual(($0 as? UsageError)?.message, "unknown shorthand flag: 'Z' in -Z") }
        XCTAssertThrowsError(try parse(["--name"])) { XCTAssertEqual(($0 as? UsageError)?.message, "flag needs an argument: --name") }
        XCTAssertThrowsError(try parse(["-e"])) { XCTAssertEqual(($0 as? UsageError)?.message, "flag needs an argument: 'e' in -e") }
    }

    func testCommandLookupKnowsManagementAliases() {
        XCTAssertEqual(Commands.find(["container", "ls", "-a"])?.0.name, "ps")
        XCTAssertEqual(Commands.find(["container", "ls", "-a"])?.1, 2)
        XCTAssertEqual(Commands.find(["image", "rm", "x"])?.0.name, "rmi")
        XCTAssertEqual(Commands.find(["volume", "ls"])?.0.name, "volume ls")
        XCTAssertEqual(Commands.find(["run", "busybox"])?.0.name, "run")
        XCTAssertNil(Commands.find(["frobnicate"]))
    }
}

final class ContainerConfigTests: XCTestCase {
    func config(_ args: [String], env: [String: String] = [:]) throws -> JSONBody {
        let a = try Arguments.parse(args, options: RunCommands.run.options, interspersed: false)
        return JSONBody(try ContainerConfig(a, environment: env, terminal: nil).body)
    }

    struct JSONBody {
        let json: JSON
        init(_ json: JSON) { self.json = json }
        subscript(_ path: String...) -> JSON? {
            path.reduce(json as JSON?) { $0?[$1] }
        }
    }

    func testRunFlagsMapOntoConfigAndHostConfig() throws {
        let c = try config(["-it", "-e", "A=1", "-e", "HOMEVAR", "-w", "/w", "-u", "7", "-l", "k=v", "-m", "512m",
                            "--cpus", "1.5", "--restart", "on-failure:3", "--init", "--cap-add", "NET_ADMIN",
                            "--read-only", "--tmpfs", "/run:size=1m", "-v", "/h:/c:ro", "-v", "/anon",
                            "-p", "127.0.0.1:8080:80/udp", "--entrypoint", "", "busybox", "sh"],
                           env: ["HOMEVAR": "h"])
        XCTAssertEqual(c["Tty"], .bool(true))
        XCTAssertEqual(c["OpenStdin"], .bool(true))
        XCTAssertEqual(c["Env"], .strings(["A=1", "HOMEVAR=h"]))
        XCTAssertEqual(c["WorkingDir"], "/w")
        XCTAssertEqual(c["User"], "7")
        XCTAssertEqual(c["Labels", "k"], "v")
        XCTAssertEqual(c["Entrypoint"], .strings([""]))
        XCTAssertEqual(c["Cmd"], .strings(["sh"]))
        XCTAssertEqual(c["Volumes", "/anon"], .object(JSONObject()))
        XCTAssertEqual(c["HostConfig", "Memory"], .int(512 << 20))
        XCTAssertEqual(c["HostConfig", "NanoCpus"], .int(1_500_000_000))
        XCTAssertEqual(c["HostConfig", "RestartPolicy", "Name"], "on-failure")
        XCTAssertEqual(c["HostConfig", "RestartPolicy", "MaximumRetryCount"], .int(3))
        XCTAssertEqual(c["HostConfig", "Init"], .bool(true))
        XCTAssertEqual(c["HostConfig", "CapAdd"], .strings(["NET_ADMIN"]))
        XCTAssertEqual(c["HostConfig", "ReadonlyRootfs"], .bool(true))
        XCTAssertEqual(c["HostConfig", "Tmpfs", "/run"], "size=1m")
        XCTAssertEqual(c["HostConfig", "Binds"], .strings(["/h:/c:ro"]))
        XCTAssertEqual(c["ExposedPorts", "80/udp"], .object(JSONObject()))
        XCTAssertEqual(c["HostConfig", "PortBindings", "80/udp"], .array([.object([("HostIp", "127.0.0.1"), ("HostPort", "8080")])]))
    }

    func testMountAndHealthcheckFlags() throws {
        let c = try config(["--mount", "type=bind,source=/a,target=/b,readonly", "--health-cmd", "true",
                            "--health-interval", "1m30s", "--health-retries", "2", "busybox"])
        XCTAssertEqual(c["HostConfig", "Mounts"], .array([.object([("Source", "/a"), ("Target", "/b"), ("ReadOnly", true), ("Type", "bind")])]))
        XCTAssertEqual(c["Healthcheck", "Test"], .strings(["CMD-SHELL", "true"]))
        XCTAssertEqual(c["Healthcheck", "Interval"], .int(90_000_000_000))
        XCTAssertEqual(c["Healthcheck", "Retries"], .int(2))
    }

    func testInvalidValuesAreRejectedWith125() {
        for bad in [["-m", "lots"], ["--restart", "sometimes"], ["--cpus", "x"], ["--mount", "type=bind,source=/a"],
                    ["-p", "80:http"]] {
            XCTAssertThrowsError(try config(bad + ["busybox"]), "\(bad)") { XCTAssertEqual(($0 as? CLIError)?.code, 125) }
        }
    }

    func testStartFailureCodesFollowDockersRule() {
        XCTAssertEqual(RunCommands.startFailureCode("exec: \"/x\": executable file not found in $PATH"), 127)
        XCTAssertEqual(RunCommands.startFailureCode("stat /x: no such file or directory"), 127)
        XCTAssertEqual(RunCommands.startFailureCode("exec /etc: permission denied"), 126)
        XCTAssertEqual(RunCommands.startFailureCode("exec /etc: is a directory"), 126)
        XCTAssertEqual(RunCommands.startFailureCode("cgroup setup failed"), 125)
    }

    func testImageReferencesSplitLikeDocker() {
        XCTAssertEqual(ImageReference("busybox").familiar, "busybox:latest")
        let r = ImageReference("localhost:5000/team/app:1.2")
        XCTAssertEqual(r.repository, "localhost:5000/team/app")
        XCTAssertEqual(r.tag, "1.2")
        XCTAssertEqual(ImageReference("localhost:5000/app").tagOrLatest, "latest")
        let d = ImageReference("app@sha256:abc")
        XCTAssertEqual(d.digest, "sha256:abc")
        XCTAssertNil(d.tagOrLatest)
    }
}
