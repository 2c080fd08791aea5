@testable import BerthEngine
import BerthOS
import Glibc
import XCTest

final class LogReaderTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        var template = Array("/tmp/berth-logs-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        dir = String(cString: try XCTUnwrap(made))
    }

    override func tearDown() {
        for name in ["container.log", "container.log.1", "container.log.2"] { unlink(dir + "/" + name) }
        rmdir(dir)
    }

    static func time(_ second: Int) -> String { "2025-01-01T00:00:\(second < 10 ? "0" : "")\(second).000000000Z" }

    static func line(_ text: String, second: Int, stderr: Bool = false) -> String {
        #"{"log":"\#(text)\n","stream":"\#(stderr ? "stderr" : "stdout")","time":"\#(time(second))"}"# + "\n"
    }

    /// Lines 1...n, line i written at second i, spread over files as `split` says (oldest first).
    func write(_ split: [ClosedRange<Int>]) {
        for (i, range) in split.enumerated() {
            let name = "container.log" + (i == split.count - 1 ? "" : ".\(split.count - 1 - i)")
            let text = range.map { Self.line("l\($0)", second: $0, stderr: $0 % 5 == 0) }.joined()
            _ = FileManager.default.createFile(atPath: dir + "/" + name, contents: Data(text.utf8))
        }
    }

    func read(_ options: Engine.LogOptions) -> [String] {
        var reader = LogReader(directory: dir, options: options)
        defer { reader.close() }
        var out: [String] = []
        _ = reader.readAvailable { out.append(String(decoding: $0.bytes, as: UTF8.self)) }
        return out
    }

    func options(tail: Int? = nil, since: Int? = nil, until: Int? = nil) -> Engine.LogOptions {
        var o = Engine.LogOptions()
        o.tail = tail
        o.sinceNano = since.map { Timestamp.nanoseconds(rfc3339: Self.time($0))! }
        o.untilNano = until.map { Timestamp.nanoseconds(rfc3339: Self.time($0))! }
        return o
    }

    func testReadsRotatedFilesOldestFirst() {
        write([1...3, 4...6, 7...9])
        XCTAssertEqual(read(options()), (1...9).map { "l\($0)\n" })
    }

    func testTailCrossesIntoRotatedFiles() {
        write([1...3, 4...6, 7...9])
        XCTAssertEqual(read(options(tail: 2)), ["l8\n", "l9\n"])
        XCTAssertEqual(read(options(tail: 3)), ["l7\n", "l8\n", "l9\n"])
        XCTAssertEqual(read(options(tail: 5)), (5...9).map { "l\($0)\n" })
        XCTAssertEqual(read(options(tail: 6)), (4...9).map { "l\($0)\n" })
        XCTAssertEqual(read(options(tail: 50)), (1...9).map { "l\($0)\n" })
        XCTAssertEqual(read(options(tail: 0)), [])
    }

    func testTailScansBackwardsPastOneChunk() {
        let count = 3000  // ~200 KB: several 64 KiB chunks
        let text = (1...count).map { Self.line("line \($0) " + String(repeating: "x", count: 10), second: 1) }.joined()
        _ = FileManager.default.createFile(atPath: dir + "/container.log", contents: Data(text.utf8))
        XCTAssertEqual(read(options(tail: 2000)).first, "line \(count - 1999) xxxxxxxxxx\n")
        XCTAssertEqual(read(options(tail: 2000)).count, 2000)
    }

    func testSinceAndUntilAreInclusiveAndApplyAfterTail() {
        write([1...3, 4...6, 7...9])
        XCTAssertEqual(read(options(since: 7)), ["l7\n", "l8\n", "l9\n"])
        XCTAssertEqual(read(options(until: 2)), ["l1\n", "l2\n"])
        XCTAssertEqual(read(options(since: 4, until: 5)), ["l4\n", "l5\n"])
        XCTAssertEqual(read(options(tail: 4, since: 1)), (6...9).map { "l\($0)\n" })
    }

    func testTimestampsAndStreamSelection() {
        write([1...5])
        var o = options()
        o.stdout = false
        XCTAssertEqual(read(o), ["l5\n"])
        o = options(tail: 1)
        o.timestamps = true
        XCTAssertEqual(read(o), [Self.time(5) + " l5\n"])
    }

    func testAPartialLastLineWaitsForItsNewline() {
        let partial = String(Self.line("l2", second: 2).dropLast(10))
        _ = FileManager.default.createFile(atPath: dir + "/container.log", contents: Data((Self.line("l1", second: 1) + partial).utf8))
        var reader = LogReader(directory: dir, options: options())
        defer { reader.close() }
        var out: [String] = []
        _ = reader.readAvailable { out.append(String(decoding: $0.bytes, as: UTF8.self)) }
        XCTAssertEqual(out, ["l1\n"])
        let fd = open(dir + "/container.log", O_WRONLY | O_APPEND)
        let rest = Array(Self.line("l2", second: 2).suffix(10).utf8)
        XCTAssertEqual(Glibc.write(fd, rest, rest.count), rest.count)
        close(fd)
        _ = reader.readAvailable { out.append(String(decoding: $0.bytes, as: UTF8.self)) }
        XCTAssertEqual(out, ["l1\n", "l2\n"])
    }

    func testFollowSwitchesToTheNewFileAfterRotation() {
        write([1...2])
        var reader = LogReader(directory: dir, options: options())
        defer { reader.close() }
        var out: [String] = []
        _ = reader.readAvailable { out.append(String(decoding: $0.bytes, as: UTF8.self)) }
        // The monitor appends one more record, then rotates and starts a new file.
        let fd = open(dir + "/container.log", O_WRONLY | O_APPEND)
        let more = Array(Self.line("l3", second: 3).utf8)
        _ = Glibc.write(fd, more, more.count)
        close(fd)
        rename(dir + "/container.log", dir + "/container.log.1")
        _ = FileManager.default.createFile(atPath: dir + "/container.log", contents: Data(Self.line("l4", second: 4).utf8))
        reader.followRotation()
        _ = reader.readAvailable { out.append(String(decoding: $0.bytes, as: UTF8.self)) }
        XCTAssertEqual(out, (1...4).map { "l\($0)\n" })
    }

    func testUntilStopsTheReader() {
        write([1...5])
        var reader = LogReader(directory: dir, options: options(until: 3))
        defer { reader.close() }
        var count = 0
        XCTAssertFalse(reader.readAvailable { _ in count += 1 })
        XCTAssertEqual(count, 3)
    }

    func testLogOptionsFromTheQuery() throws {
        let now: Int64 = 1_700_000_000_000_000_000
        let o = try Engine.LogOptions(follow: true, stdout: true, stderr: false, timestamps: true, tail: "all",
                                      since: "1699999990.5", until: "0", now: now)
        XCTAssertNil(o.tail)
        XCTAssertEqual(o.sinceNano, now - 9_500_000_000)
        XCTAssertNil(o.untilNano)
        XCTAssertEqual(try Engine.LogOptions(follow: false, stdout: true, stderr: true, timestamps: false, tail: "7",
                                             since: "5m", until: nil, now: now).sinceNano, now - 300_000_000_000)
        XCTAssertNil(try Engine.LogOptions(follow: false, stdout: true, stderr: true, timestamps: false, tail: "-1",
                                           since: nil, until: nil, now: now).tail)
        XCTAssertThrowsError(try Engine.LogOptions(follow: false, stdout: true, stderr: true, timestamps: false, tail: nil,
                                                   since: "whenever", until: nil, now: now))
    }

    func testRotationOptionsFromLogConfig() throws {
        typealias LC = DockerHostConfig.LogConfig
        XCTAssertEqual(try LogRotation(LC(type: "json-file", config: ["max-size": "10m", "max-file": "3"])).monitorArguments,
                       ["--log-max-size", "10485760", "--log-max-files", "3"])
        XCTAssertEqual(try LogRotation(LC(type: "", config: ["max-size": "1k"])).monitorArguments, ["--log-max-size", "1024"])
        XCTAssertEqual(try LogRotation(nil).monitorArguments, [])
        XCTAssertEqual(LogRotation.ramInBytes("1.5KiB"), 1536)
        XCTAssertEqual(LogRotation.ramInBytes("64MB"), 64 << 20)
        XCTAssertEqual(LogRotation.ramInBytes("100"), 100)
        XCTAssertNil(LogRotation.ramInBytes("ten"))
        XCTAssertThrowsError(try LogRotation(LC(type: "json-file", config: ["max-size": "lots"])))
        XCTAssertThrowsError(try LogRotation(LC(type: "json-file", config: ["max-file": "0"])))
        XCTAssertThrowsError(try LogRotation(LC(type: "json-file", config: ["colour": "blue"]))) {
            XCTAssertEqual(($0 as? EngineError)?.message, "unknown log opt 'colour' for json-file log driver")
        }
    }
}
