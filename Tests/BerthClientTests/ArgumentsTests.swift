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

final class NetworkFlagsTests: XCTestCase {
    func config(_ args: [String]) throws -> ContainerConfigTests.JSONBody {
        let a = try Arguments.parse(args + ["busybox"], options: RunCommands.run.options, interspersed: false)
        return ContainerConfigTests.JSONBody(try ContainerConfig(a, environment: [:], terminal: nil).body)
    }

    func binding(_ ip: String, _ port: String) -> JSON { .object([("HostIp", .string(ip)), ("HostPort", .string(port))]) }

    func testPublishRangesAddressesAndProtocolsFollowParsePortSpec() throws {
        let c = try config(["-p", "8000-8001:80-81", "-p", "127.0.0.1::90/udp", "-p", "9000-9005:100", "-p", "[::1]:53:53/UDP",
                            "-p", "published=7000,target=70,protocol=udp", "-p", "8080:80"])
        XCTAssertEqual(c["HostConfig", "PortBindings", "80/tcp"], .array([binding("", "8000"), binding("", "8080")]))
        XCTAssertEqual(c["HostConfig", "PortBindings", "81/tcp"], .array([binding("", "8001")]))
        XCTAssertEqual(c["HostConfig", "PortBindings", "90/udp"], .array([binding("127.0.0.1", "")]))
        XCTAssertEqual(c["HostConfig", "PortBindings", "100/tcp"], .array([binding("", "9000-9005")]))
        XCTAssertEqual(c["HostConfig", "PortBindings", "53/udp"], .array([binding("::1", "53")]))
        XCTAssertEqual(c["HostConfig", "PortBindings", "70/udp"], .array([binding("", "7000")]))
        XCTAssertEqual(c["ExposedPorts"]?.object?.keys.sorted(), ["100/tcp", "53/udp", "70/udp", "80/tcp", "81/tcp", "90/udp"])
    }

    func testExposeTakesRangesAndProtocols() throws {
        let c = try config(["--expose", "200-202/udp", "--expose", "300", "-P"])
        XCTAssertEqual(c["ExposedPorts"]?.object?.keys, ["200/udp", "201/udp", "202/udp", "300/tcp"])
        XCTAssertEqual(c["HostConfig", "PublishAllPorts"], .bool(true))
        XCTAssertNil(c["HostConfig", "PortBindings"])
    }

    func testBadPortsUseDockersMessages() {
        let cases: [([String], String)] = [
            (["-p", "80-81:90-92"], "invalid ranges specified for container and host Ports: 90-92 and 80-81"),
            (["-p", "8080:80/foo"], "invalid proto: foo"),
            (["-p", "1.2.3:8080:80"], "invalid IP address: 1.2.3"),
            (["-p", "x:80"], "invalid hostPort: x"),
            (["-p", "80:70000"], "invalid containerPort: 70000"),
            (["-p", "8080:"], "no port specified: 8080:<empty>"),
            (["--expose", "1:2"], "invalid port format for --expose: 1:2"),
            (["--expose", "9-1"], "invalid range format for --expose: 9-1, error: invalid range specified for port: 9-1"),
        ]
        for (args, message) in cases {
            XCTAssertThrowsError(try config(args), "\(args)") { error in
                XCTAssertEqual((error as? CLIError)?.code, 125)
                XCTAssertTrue((error as? CLIError)?.description.hasPrefix("berth: \(message)\n") == true, "\(error)")
            }
        }
    }

    func testNoNetworkIsTheDefaultOneWithAnEndpointEntry() throws {
        let c = try config([])
        XCTAssertEqual(c["HostConfig", "NetworkMode"], "default")
        XCTAssertEqual(c["NetworkingConfig", "EndpointsConfig"], .object([("default", .object(JSONObject()))]))
    }

    func testNetworkAliasIpAndMacGoToTheFirstNetwork() throws {
        let c = try config(["--net", "other", "--network", "web", "--network-alias", "a", "--network-alias", "b",
                            "--ip", "10.1.2.3", "--mac-address", "02:42:ac:11:00:02"])
        XCTAssertEqual(c["HostConfig", "NetworkMode"], "web")
        XCTAssertEqual(c["NetworkingConfig", "EndpointsConfig", "web", "Aliases"], .strings(["a", "b"]))
        XCTAssertEqual(c["NetworkingConfig", "EndpointsConfig", "web", "IPAMConfig", "IPv4Address"], "10.1.2.3")
        XCTAssertEqual(c["NetworkingConfig", "EndpointsConfig", "web", "MacAddress"], "02:42:ac:11:00:02")
        XCTAssertEqual(c["NetworkingConfig", "EndpointsConfig", "other"], .object(JSONObject()))
    }

    func testALoneNetworkWithNothingToSayHasNoEndpointEntry() throws {
        let c = try config(["--network", "bridge"])
        XCTAssertEqual(c["HostConfig", "NetworkMode"], "bridge")
        XCTAssertEqual(c["NetworkingConfig", "EndpointsConfig"], .object(JSONObject()))
    }

    func testLongNetworkSyntax() throws {
        let c = try config(["--network", "name=front,alias=x,alias=y,ip=10.0.0.9,driver-opt=k=v", "--network", "back"])
        XCTAssertEqual(c["HostConfig", "NetworkMode"], "front")
        XCTAssertEqual(c["NetworkingConfig", "EndpointsConfig", "front", "Aliases"], .strings(["x", "y"]))
        XCTAssertEqual(c["NetworkingConfig", "EndpointsConfig", "front", "IPAMConfig", "IPv4Address"], "10.0.0.9")
        XCTAssertEqual(c["NetworkingConfig", "EndpointsConfig", "front", "DriverOpts", "k"], "v")
        XCTAssertEqual(c["NetworkingConfig", "EndpointsConfig", "back"], .object(JSONObject()))
        // A plain name with a dash or dot is not the long form.
        XCTAssertEqual(try config(["--network", "my-net.1"])["HostConfig", "NetworkMode"], "my-net.1")
    }

    func testNetworkMistakesUseDockersMessages() {
        let cases: [([String], String)] = [
            (["--network-alias", "x"], "network-scoped aliases are only supported for user-defined networks"),
            (["--network", "bridge", "--network-alias", "x"], "network-scoped aliases are only supported for user-defined networks"),
            (["--network", "a", "--network", "a"], "network \"a\" is specified multiple times"),
            (["--network", "a", "--network", "host"], "conflicting options: cannot attach both user-defined and non-user-defined network-modes"),
            (["--network", "name=a,alias=x", "--network-alias", "y"], "conflicting options: cannot specify both --network-alias and per-network alias"),
            (["--network", "name=a,bogus=1"], "invalid argument \"name=a,bogus=1\" for \"--network\" flag: invalid field key bogus"),
            (["--network", "alias=x"], "invalid argument \"alias=x\" for \"--network\" flag: network name not specified"),
            (["--mac-address", "zz"], "zz is not a valid mac address"),
        ]
        for (args, message) in cases {
            XCTAssertThrowsError(try config(args), "\(args)") { error in
                XCTAssertTrue((error as? CLIError)?.description.hasPrefix("berth: \(message)\n") == true, "\(error)")
            }
        }
    }

    func testDnsAndExtraHostsAreValidatedAndNormalized() throws {
        let c = try config(["--dns", "1.1.1.1", "--dns", "2001:DB8:0:0::1", "--dns-search", "example.com.", "--dns-search", ".",
                            "--dns-option", "ndots:2", "--dns-opt", "rotate", "--add-host", "h=1.2.3.4", "--add-host", "g:[::1]",
                            "--add-host", "gw:host-gateway", "-h", "box", "--domainname", "example.org"])
        XCTAssertEqual(c["HostConfig", "Dns"], .strings(["1.1.1.1", "2001:db8::1"]))
        XCTAssertEqual(c["HostConfig", "DnsSearch"], .strings(["example.com", "."]))
        XCTAssertEqual(c["HostConfig", "DnsOptions"], .strings(["ndots:2", "rotate"]))
        XCTAssertEqual(c["HostConfig", "ExtraHosts"], .strings(["h:1.2.3.4", "g:::1", "gw:host-gateway"]))
        XCTAssertEqual(c["Hostname"], "box")
        XCTAssertEqual(c["Domainname"], "example.org")
        let cases: [([String], String)] = [
            (["--dns", "foo"], "invalid argument \"foo\" for \"--dns\" flag: IP address is not correctly formatted: foo"),
            (["--dns-search", "-x"], "invalid argument \"-x\" for \"--dns-search\" flag: -x is not a valid domain"),
            (["--dns-search", "123"], "invalid argument \"123\" for \"--dns-search\" flag: 123 is not a valid domain"),
            (["--add-host", "bad"], "invalid argument \"bad\" for \"--add-host\" flag: bad format for add-host: \"bad\""),
            (["--add-host", "h:nope"], "invalid argument \"h:nope\" for \"--add-host\" flag: invalid IP address in add-host: \"nope\""),
        ]
        for (args, message) in cases {
            XCTAssertThrowsError(try config(args), "\(args)") { error in
                XCTAssertTrue((error as? CLIError)?.description.hasPrefix("berth: \(message)\n") == true, "\(error)")
            }
        }
    }
}

final class NetworkCommandTests: XCTestCase {
    func createBody(_ args: [String]) throws -> JSON {
        try NetworkCommands.createBody(try Arguments.parse(args, options: NetworkCommands.create.options))
    }

    func testCreateBodyCarriesIPAMOptionsAndLabels() throws {
        let b = try createBody(["-d", "bridge", "--subnet", "10.9.0.0/24", "--gateway", "10.9.0.1", "--ip-range", "10.9.0.128/25",
                                "--aux-address", "h=10.9.0.5", "--internal", "--attachable", "-o", "a=b", "--label", "k=v",
                                "--label", "bare", "--ipam-opt", "x=y", "net1"])
        XCTAssertEqual(b["Name"], "net1")
        XCTAssertEqual(b["Driver"], "bridge")
        XCTAssertEqual(b["IPAM"]?["Driver"], "default")
        XCTAssertEqual(b["IPAM"]?["Options"]?["x"], "y")
        XCTAssertEqual(b["IPAM"]?["Config"], .array([.object([
            ("Subnet", "10.9.0.0/24"), ("IPRange", "10.9.0.128/25"), ("Gateway", "10.9.0.1"),
            ("AuxiliaryAddresses", .object([("h", "10.9.0.5")])),
        ])]))
        XCTAssertEqual(b["Internal"], .bool(true))
        XCTAssertEqual(b["Attachable"], .bool(true))
        XCTAssertEqual(b["Options"]?["a"], "b")
        XCTAssertEqual(b["Labels"], .object([("k", "v"), ("bare", "")]))
        XCTAssertNil(b["EnableIPv6"])
        XCTAssertEqual(try createBody(["--ipv6", "n"])["EnableIPv6"], .bool(true))
        XCTAssertEqual(try createBody(["n"])["IPAM"]?["Config"], .array([]))
    }

    func testSeveralSubnetsEachTakeTheirGateway() throws {
        let b = try createBody(["--subnet", "10.1.0.0/16,10.2.0.0/16", "--gateway", "10.2.0.1", "--gateway", "10.1.0.1", "n"])
        XCTAssertEqual(b["IPAM"]?["Config"], .array([
            .object([("Subnet", "10.1.0.0/16"), ("Gateway", "10.1.0.1")]), .object([("Subnet", "10.2.0.0/16"), ("Gateway", "10.2.0.1")]),
        ]))
        let dual = try createBody(["--ipv6", "--subnet", "fd00:1::/64", "--subnet", "10.3.0.0/24", "--gateway", "10.3.0.1",
                                   "--gateway", "fd00:1::1", "--ip-range", "fd00:1::/80", "n"])
        XCTAssertEqual(dual["IPAM"]?["Config"], .array([
            .object([("Subnet", "fd00:1::/64"), ("IPRange", "fd00:1::/80"), ("Gateway", "fd00:1::1")]),
            .object([("Subnet", "10.3.0.0/24"), ("Gateway", "10.3.0.1")]),
        ]))
    }

    func testIPAMMistakesUseDockersMessages() {
        let cases: [([String], String)] = [
            (["--gateway", "10.0.0.1"], "every ip-range or gateway must have a corresponding subnet"),
            (["--subnet", "10.0.0.0/24", "--gateway", "10.1.0.1"], "no matching subnet for gateway 10.1.0.1"),
            (["--subnet", "10.0.0.0/24", "--ip-range", "10.1.0.0/25"], "no matching subnet for range 10.1.0.0/25"),
            (["--subnet", "10.0.0.0/8", "--subnet", "10.1.0.0/16"], "multiple overlapping subnet configuration is not supported"),
            (["--subnet", "nope", "--gateway", "10.0.0.1"], "invalid subnet: invalid CIDR address: nope"),
            (["--subnet", "10.0.0.0/24", "--aux-address", "a=10.1.0.1"], "no matching subnet for aux-address 10.1.0.1"),
            (["--label", "=x"], "invalid argument \"=x\" for \"--label\" flag: invalid label '=x': empty name"),
        ]
        for (args, message) in cases {
            XCTAssertThrowsError(try createBody(args + ["n"]), "\(args)") { XCTAssertEqual(($0 as? CLIError)?.description, message) }
        }
    }

    func testConnectBodySplitsAliasesOnCommas() throws {
        let a = try Arguments.parse(["--alias", "a,b", "--alias", "c", "--ip", "10.0.0.4", "net", "box"],
                                    options: NetworkCommands.connect.options)
        let b = try NetworkCommands.connectBody(a)
        XCTAssertEqual(b["Container"], "box")
        XCTAssertEqual(b["EndpointConfig"]?["Aliases"], .strings(["a", "b", "c"]))
        XCTAssertEqual(b["EndpointConfig"]?["IPAMConfig"]?["IPv4Address"], "10.0.0.4")
    }

    func testListRowsMatchDockersFormattingContext() {
        let row = NetworkCommands.row(.object([
            ("Name", "web"), ("Id", "0123456789abcdef0123"), ("Created", "2025-05-30T12:04:43.120000000Z"), ("Scope", "local"),
            ("Driver", "bridge"), ("EnableIPv4", true), ("EnableIPv6", false), ("Internal", true), ("Labels", .object([("b", "2"), ("a", "1")])),
        ]), trunc: true)
        XCTAssertEqual(row, .object([
            ("CreatedAt", "2025-05-30 12:04:43.12 +0000 UTC"), ("Driver", "bridge"), ("ID", "0123456789ab"), ("IPv4", "true"),
            ("IPv6", "false"), ("Internal", "true"), ("Labels", "a=1,b=2"), ("Name", "web"), ("Scope", "local"),
        ]))
        XCTAssertEqual(NetworkCommands.goTimeString("2025-05-30T12:04:43Z"), "2025-05-30 12:04:43 +0000 UTC")
        XCTAssertEqual(NetworkCommands.goTimeString("2025-05-30T12:04:43.5+02:00"), "2025-05-30 12:04:43.5 +0200 +0200")
    }

    func testNaturalOrderComparesNumbersByValue() {
        XCTAssertEqual(["net10", "net9", "a", "net1", "Net"].sorted(by: naturalLess), ["Net", "a", "net1", "net9", "net10"])
        XCTAssertEqual(["9000/tcp -> :1", "10000/tcp -> :1", "80/udp -> :1", "80/tcp -> :1"].sorted(by: naturalLess),
                       ["80/tcp -> :1", "80/udp -> :1", "9000/tcp -> :1", "10000/tcp -> :1"])
    }

    func testNetworkCommandsAreFoundByEveryName() {
        for (words, name) in [(["network", "ls"], "network ls"), (["network", "list"], "network list"),
                              (["network", "rm", "x"], "network rm"), (["network", "remove", "x"], "network remove"),
                              (["port", "c"], "port"), (["container", "port", "c"], "container port")] {
            XCTAssertEqual(Commands.find(words)?.0.name, name)
        }
    }

    func testPsPortsColumnGroupsRangesAsDocker() {
        func port(_ priv: Int, _ type: String, _ ip: String? = nil, _ pub: Int? = nil) -> JSON {
            var o = JSONObject()
            if let ip { o["IP"] = .string(ip) }
            o["PrivatePort"] = .int(priv)
            if let pub { o["PublicPort"] = .int(pub) }
            o["Type"] = .string(type)
            return .object(o)
        }
        XCTAssertEqual(ContainerCommands.ports([port(80, "tcp", "0.0.0.0", 8080), port(81, "udp")]), "81/udp, 0.0.0.0:8080->80/tcp")
        XCTAssertEqual(ContainerCommands.ports([port(81, "tcp", "0.0.0.0", 81), port(80, "tcp", "0.0.0.0", 80), port(90, "tcp"),
                                                port(91, "tcp"), port(93, "tcp")]),
                       "90-91/tcp, 0.0.0.0:80-81->80-81/tcp, 93/tcp")
        XCTAssertEqual(ContainerCommands.ports([port(53, "udp", "::1", 5353)]), "[::1]:5353->53/udp")
        XCTAssertEqual(ContainerCommands.ports([]), "")
    }

    func testPortLinesAsDockerPort() throws {
        var ports = JSONObject()
        ports["80/tcp"] = .array([.object([("HostIp", "0.0.0.0"), ("HostPort", "8080")])])
        ports["53/udp"] = .array([.object([("HostIp", "127.0.0.1"), ("HostPort", "5353")])])
        ports["443/tcp"] = .null
        XCTAssertEqual(try ContainerCommands.portLines(ports, container: "web", port: nil),
                       ["53/udp -> 127.0.0.1:5353", "80/tcp -> 0.0.0.0:8080"])
        XCTAssertEqual(try ContainerCommands.portLines(ports, container: "web", port: "80"), ["0.0.0.0:8080"])
        XCTAssertEqual(try ContainerCommands.portLines(ports, container: "web", port: "53/udp"), ["127.0.0.1:5353"])
        XCTAssertThrowsError(try ContainerCommands.portLines(ports, container: "web", port: "443/tcp")) {
            XCTAssertEqual(($0 as? CLIError)?.description, "Error: No public port '443/tcp' published for web")
        }
        XCTAssertThrowsError(try ContainerCommands.portLines(ports, container: "web", port: "http")) {
            XCTAssertEqual(($0 as? CLIError)?.description, "Error: invalid port (http): strconv.ParseUint: parsing \"http\": invalid syntax")
        }
    }
}
