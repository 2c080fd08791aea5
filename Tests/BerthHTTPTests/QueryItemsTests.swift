import BerthHTTP
import XCTest

final class QueryItemsTests: XCTestCase {
    func testDockerBoolParsing() {
        let q = QueryItems(parsing: "a=1&b=true&c=True&d=yes&e=0&f=false&g=False&h=no&i=none&j=&k&l=%20TRUE%20&m=2")
        for name in ["a", "b", "c", "d", "l", "m"] { XCTAssertTrue(q.bool(name), name) }
        for name in ["e", "f", "g", "h", "i", "j", "k", "absent"] { XCTAssertFalse(q.bool(name), name) }
    }

    func testBoolDefaultAppliesOnlyWhenAbsent() {
        let q = QueryItems(parsing: "stream=0&empty=")
        XCTAssertTrue(q.bool("absent", default: true))
        XCTAssertFalse(q.bool("stream", default: true))
        XCTAssertFalse(q.bool("empty", default: true))
    }

    func testRepeatedKeysAndDecoding() throws {
        let q = QueryItems(parsing: "t=a%2Fb&t=c+d&n=5&bad=%zz")
        XCTAssertEqual(q.all("t"), ["a/b", "c d"])
        XCTAssertEqual(q["t"], "a/b")
        XCTAssertEqual(try q.int("n"), 5)
        XCTAssertNil(try q.int("missing"))
        XCTAssertFalse(q.contains("bad"), "a malformed escape drops the pair, as Go's ParseQuery")
        XCTAssertThrowsError(try QueryItems(parsing: "n=x").int("n"))
    }
}
