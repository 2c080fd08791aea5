import XCTest
@testable import berth
@testable import BerthClient

final class TemplateTests: XCTestCase {
    let data = try! JSON.parse("""
        {"Id":"abc","State":{"Status":"running","Pid":42,"Running":true},"Config":{"Labels":{"b":"2","a":"1","x.y":"z"},
         "Env":["A=1","B=2"],"Tty":false},"Mounts":[],"Html":"<b>&"}
        """)

    func render(_ template: String, _ value: JSON? = nil) throws -> String {
        try Template(template).render(value ?? data)
    }

    func testFieldsNestedFieldsAndLiteralText() throws {
        XCTAssertEqual(try render("id={{.Id}} status={{.State.Status}} pid={{.State.Pid}} {{.State.Running}}"),
                       "id=abc status=running pid=42 true")
    }

    func testJSONOfDotAndOfAField() throws {
        XCTAssertEqual(try render("{{json .Config.Labels}}"), #"{"b":"2","a":"1","x.y":"z"}"#)
        XCTAssertEqual(try render("{{json .Mounts}} {{json .Html}}"), #"[] "\u003cb\u003e\u0026""#)
        XCTAssertEqual(try render("{{json .}}", JSON.object([("k", "v")])), #"{"k":"v"}"#)
    }

    func testIndexIntoMapsAndArrays() throws {
        XCTAssertEqual(try render(#"{{index .Config.Labels "x.y"}} {{index .Config.Env 1}}"#), "z B=2")
        XCTAssertEqual(try render(#"{{index .Config.Labels "nope"}}"#), "<no value>")
    }

    func testGoPrintingOfListsMapsAndMissingFields() throws {
        XCTAssertEqual(try render("{{.Config.Env}} {{.Config.Labels}} {{.Nope}}"), "[A=1 B=2] map[a:1 b:2 x.y:z] <no value>")
    }

    func testFunctionsPipesAndControlFlow() throws {
        XCTAssertEqual(try render(#"{{join .Config.Env ","}} {{.State.Status | upper}} {{lower "AB"}}"#), "A=1,B=2 RUNNING ab")
        XCTAssertEqual(try render("{{if .Config.Tty}}tty{{else}}no tty{{end}}"), "no tty")
        XCTAssertEqual(try render("{{range .Config.Env}}[{{.}}]{{end}}"), "[A=1][B=2]")
        XCTAssertEqual(try render("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}"), "a=1;b=2;x.y=z;")
        XCTAssertEqual(try render("{{with .State}}{{.Status}}{{end}}"), "running")
        XCTAssertEqual(try render("{{if eq .State.Status \"running\"}}up{{end}} {{len .Config.Env}}"), "up 2")
        XCTAssertEqual(try render("a  {{- .Id -}}  b"), "aabcb")
    }

    func testContextLabelMethodReadsTheLabelsText() throws {
        XCTAssertEqual(try render(#"{{.Label "team"}}"#, JSON.object([("Labels", "tier=web,team=core")])), "core")
    }

    func testErrorsAreReported() {
        XCTAssertThrowsError(try render("{{.Id"))
        XCTAssertThrowsError(try render("{{if .Id}}x"))
        XCTAssertThrowsError(try render("{{nosuchfunc .Id}}"))
        XCTAssertThrowsError(try render("{{.Id.Deeper}}"))
    }

    func testTableFormatsPrintAHeaderAndAlignColumns() {
        XCTAssertEqual(tabulate("CONTAINER ID\tNAMES\nabc\tweb\n"), "CONTAINER ID   NAMES\nabc            web\n")
        XCTAssertEqual(tabulate("A\tB\tC\nxx\t\tz\n"), "A         B         C\nxx                  z\n")
    }
}

final class StreamAndUnitsTests: XCTestCase {
    func frame(_ stream: UInt8, _ text: String) -> [UInt8] {
        let p = Array(text.utf8)
        return [stream, 0, 0, 0, UInt8(p.count >> 24), UInt8(p.count >> 16 & 0xff), UInt8(p.count >> 8 & 0xff), UInt8(p.count & 0xff)] + p
    }

    func testFrameDecoderHandlesSplitAndJoinedFrames() {
        var d = FrameDecoder()
        let bytes = frame(1, "hello\n") + frame(2, "oops\n") + frame(1, "")
        XCTAssertEqual(d.feed(Array(bytes[0..<5])), [])
        XCTAssertEqual(d.feed(Array(bytes[5..<20])), [.init(stream: 1, payload: Array("hello\n".utf8))])
        XCTAssertTrue(d.hasPartialFrame)
        XCTAssertEqual(d.feed(Array(bytes[20...])), [.init(stream: 2, payload: Array("oops\n".utf8)), .init(stream: 1, payload: [])])
        XCTAssertFalse(d.hasPartialFrame)
        let big = String(repeating: "x", count: 70000)
        XCTAssertEqual(d.feed(frame(1, big)).first?.payload.count, 70000)
    }

    func testMemorySizesAreBinary() {
        XCTAssertEqual(Units.ramInBytes("512m"), 512 << 20)
        XCTAssertEqual(Units.ramInBytes("1g"), 1 << 30)
        XCTAssertEqual(Units.ramInBytes("1.5GiB"), 3 << 29)
        XCTAssertEqual(Units.ramInBytes("100"), 100)
        XCTAssertEqual(Units.ramInBytes("64kb"), 65536)
        XCTAssertNil(Units.ramInBytes("lots"))
        XCTAssertNil(Units.ramInBytes("5q"))
    }

    func testGoDurations() {
        XCTAssertEqual(Units.duration("1h2m3.5s"), 3723.5)
        XCTAssertEqual(Units.duration("300ms"), 0.3)
        XCTAssertEqual(Units.duration("0"), 0)
        XCTAssertEqual(Units.duration("-1m"), -60)
        XCTAssertNil(Units.duration("10"))
        XCTAssertNil(Units.duration("1x"))
    }

    func testHumanDurationsAndSizesAsGoUnits() {
        XCTAssertEqual(Units.humanDuration(seconds: 0.5), "Less than a second")
        XCTAssertEqual(Units.humanDuration(seconds: 1), "1 second")
        XCTAssertEqual(Units.humanDuration(seconds: 45), "45 seconds")
        XCTAssertEqual(Units.humanDuration(seconds: 90), "About a minute")
        XCTAssertEqual(Units.humanDuration(seconds: 3600 * 3), "3 hours")
        XCTAssertEqual(Units.humanDuration(seconds: 86400 * 3), "3 days")
        XCTAssertEqual(Units.humanSize(0), "0B")
        XCTAssertEqual(Units.humanSize(2_143_232), "2.14MB")
        XCTAssertEqual(Units.humanSize(10_240), "10.2kB")
        XCTAssertEqual(Units.humanSize(999), "999B")
        XCTAssertEqual(Units.bytesSize(208_896), "204KiB")
        XCTAssertEqual(Units.bytesSize(1_610_612_736), "1.5GiB")
        XCTAssertEqual(fixed(3.14159, 2), "3.14")
        XCTAssertEqual(fixed(0, 2), "0.00")
    }

    func testSinceAndUntilTimestamps() {
        XCTAssertEqual(Units.timestamp("10m", now: 1000.5), "400.500000000")
        XCTAssertEqual(Units.timestamp("1700000000", now: 0), "1700000000")
        XCTAssertEqual(Units.timestamp("2023-11-14T22:13:20Z", now: 0), "1700000000")
        XCTAssertNil(Units.timestamp("yesterday", now: 0))
    }

    func testJSONKeepsKeyOrderAndNumberText() throws {
        let text = #"{"z":1,"a":[true,null,1.50,"\u00e9\n"],"big":18446744073709551615}"#
        let value = try JSON.parse(text)
        XCTAssertEqual(value.object?.keys, ["z", "a", "big"])
        XCTAssertEqual(value.compact, #"{"z":1,"a":[true,null,1.50,"é\n"],"big":18446744073709551615}"#)
        XCTAssertEqual(try JSON.parse("[1]").indented(), "[\n    1\n]")
        XCTAssertThrowsError(try JSON.parse("{\"a\":}"))
        XCTAssertThrowsError(try JSON.parse("[1] x"))
    }

    func testDaemonAddressesAndHostPrecedence() {
        XCTAssertEqual(DaemonAddress("unix:///run/x.sock"), .unix("/run/x.sock"))
        XCTAssertEqual(DaemonAddress("tcp://127.0.0.1:2375"), .tcp(host: "127.0.0.1", port: 2375))
        XCTAssertEqual(DaemonAddress("tcp://example"), .tcp(host: "example", port: 2375))
        XCTAssertEqual(DaemonAddress("tcp://[::1]:1234"), .tcp(host: "::1", port: 1234))
        XCTAssertNil(DaemonAddress("ssh://host"))
        XCTAssertEqual(EngineClient.resolveHost(flag: nil, environment: ["DOCKER_HOST": "d", "BERTH_HOST": "b"]), "b")
        XCTAssertEqual(EngineClient.resolveHost(flag: "f", environment: ["BERTH_HOST": "b"]), "f")
        XCTAssertEqual(EngineClient.resolveHost(flag: nil, environment: ["DOCKER_HOST": "d"]), "d")
        XCTAssertEqual(EngineClient.resolveHost(flag: nil, environment: [:]), "unix:///run/berth/berth.sock")
        XCTAssertEqual(EngineClient.compare("1.9", "1.47"), -1)
    }

    func testDetachKeys() {
        XCTAssertEqual(StreamSession.detachSequence("ctrl-p,ctrl-q"), [0x10, 0x11])
        XCTAssertEqual(StreamSession.detachSequence("a,ctrl-@"), [0x61, 0])
        XCTAssertNil(StreamSession.detachSequence("ctrl-pp"))
    }
}
