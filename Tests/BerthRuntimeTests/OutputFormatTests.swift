import XCTest

@testable import BerthRuntime
import BerthOS

final class OutputFormatTests: XCTestCase {
    func testGoStyleIndentMatchesRuncsStateLayout() {
        let compact = #"{"a":{"b":[1,2],"e":{},"f":[]},"s":"x: {y}, \"z\""}"#
        let expected = """
        {
          "a": {
            "b": [
              1,
              2
            ],
            "e": {},
            "f": []
          },
          "s": "x: {y}, \\"z\\""
        }
        """
        XCTAssertEqual(goStyleIndent(compact), expected)
    }

    func testTimestampIsRFC3339NanoInUTC() {
        let t = Timestamp.now()
        XCTAssertNotNil(t.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z/), t)
    }
}
