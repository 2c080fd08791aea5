import XCTest

@testable import BerthAPI

final class DetachKeysTests: XCTestCase {
    func testDefaultIsCtrlPCtrlQ() throws {
        XCTAssertEqual(try DetachKeys("").sequence, [16, 17])
    }

    func testParsesDockersSyntax() throws {
        XCTAssertEqual(try DetachKeys("ctrl-a,x,ctrl-@,ctrl-\\,ctrl-_,DEL").sequence, [1, UInt8(ascii: "x"), 0, 28, 31, 127])
        for bad in ["ctrl-", "ctrl-foo", "ab", "ctrl-A", ","] {
            XCTAssertThrowsError(try DetachKeys(bad), bad)
        }
    }

    func testSequenceDetachesAndIsNotForwarded() throws {
        var keys = try DetachKeys("")
        let (forward, detach) = keys.scan([UInt8(ascii: "l"), UInt8(ascii: "s"), 16, 17, UInt8(ascii: "z")])
        XCTAssertEqual(forward, Array("ls".utf8))
        XCTAssertTrue(detach)
    }

    func testSequenceSplitAcrossReadsStillDetaches() throws {
        var keys = try DetachKeys("")
        XCTAssertEqual(keys.scan([16]).forward, [])
        XCTAssertTrue(keys.scan([17]).detach)
    }

    func testAPartialSequenceIsPassedOnWhenBroken() throws {
        var keys = try DetachKeys("")
        var result = keys.scan([16])
        XCTAssertEqual(result.forward, [])
        result = keys.scan([UInt8(ascii: "a")])
        XCTAssertEqual(result.forward, [16, UInt8(ascii: "a")])
        XCTAssertFalse(result.detach)
        // The byte that broke a partial match may itself start the sequence.
        result = keys.scan([16, 16, 17])
        XCTAssertEqual(result.forward, [16])
        XCTAssertTrue(result.detach)
    }

    func testSingleKeySequence() throws {
        var keys = try DetachKeys("ctrl-x")
        let result = keys.scan([UInt8(ascii: "a"), 24])
        XCTAssertEqual(result.forward, [UInt8(ascii: "a")])
        XCTAssertTrue(result.detach)
    }
}
