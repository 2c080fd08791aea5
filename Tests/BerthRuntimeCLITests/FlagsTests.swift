import XCTest

@testable import berth_runtime

final class FlagsTests: XCTestCase {
    let specs: [FlagSpec] = [
        .value("bundle", "b", help: ""), .bool("detach", "d", help: ""), .value("env", "e", help: ""),
    ]

    func testGoStyleSpellingsAllParse() throws {
        let f = try ParsedFlags(["-bundle", "/a", "--detach", "-e=X=1", "--env", "Y=2", "id"], specs: specs,
                                stopAtFirstPositional: false)
        XCTAssertEqual(f.string("bundle"), "/a")
        XCTAssertTrue(f.bool("detach"))
        XCTAssertEqual(f.strings("env"), ["X=1", "Y=2"])
        XCTAssertEqual(f.positionals, ["id"])
    }

    func testBooleanTakesAnInlineFalse() throws {
        let f = try ParsedFlags(["--detach=false", "-b=/x"], specs: specs, stopAtFirstPositional: false)
        XCTAssertFalse(f.bool("detach"))
        XCTAssertEqual(f.string("bundle"), "/x")
    }

    func testFlagsAfterPositionalsUnlessStopping() throws {
        let lenient = try ParsedFlags(["id", "-d"], specs: specs, stopAtFirstPositional: false)
        XCTAssertTrue(lenient.bool("detach"))
        let exec = try ParsedFlags(["-d", "id", "sh", "-c", "echo -d"], specs: specs, stopAtFirstPositional: true)
        XCTAssertTrue(exec.bool("detach"))
        XCTAssertEqual(exec.positionals, ["id", "sh", "-c", "echo -d"])
    }

    func testUnknownFlagAndMissingValueAreUsageErrors() {
        XCTAssertThrowsError(try ParsedFlags(["--nope"], specs: specs, stopAtFirstPositional: false)) { e in
            XCTAssertEqual((e as? UsageError)?.message, "flag provided but not defined: -nope")
        }
        XCTAssertThrowsError(try ParsedFlags(["--bundle"], specs: specs, stopAtFirstPositional: false))
        XCTAssertThrowsError(try ParsedFlags(["--detach=maybe"], specs: specs, stopAtFirstPositional: false))
    }

    func testDoubleDashEndsFlags() throws {
        let f = try ParsedFlags(["--", "-d"], specs: specs, stopAtFirstPositional: false)
        XCTAssertFalse(f.bool("detach"))
        XCTAssertEqual(f.positionals, ["-d"])
    }
}
