import XCTest

@testable import BerthRegistry

final class NamesTests: XCTestCase {
    func testRepositoryNamesFollowTheSpecGrammar() {
        for good in ["busybox", "library/busybox", "a", "a.b", "a_b", "a__b", "a-b", "a---b", "team/app-1/x.y", "0"] {
            XCTAssertTrue(Names.isValidRepository(good), good)
        }
        for bad in ["", "Busybox", "a/", "/a", "a//b", "-a", "a-", "a.", "a..b", "a___b", "a._b", "_a", "a b", "a:b",
                    String(repeating: "a", count: 256)] {
            XCTAssertFalse(Names.isValidRepository(bad), bad)
        }
    }

    func testTagsFollowTheSpecGrammar() {
        for good in ["latest", "v1.0", "_x", "A-b_c.d", String(repeating: "t", count: 128)] { XCTAssertTrue(Names.isValidTag(good), good) }
        for bad in ["", ".x", "-x", "a/b", "a:b", String(repeating: "t", count: 129)] { XCTAssertFalse(Names.isValidTag(bad), bad) }
    }

    func testRequestRangesAgainstABlobSize() {
        XCTAssertEqual(ByteRange.parse(requestHeader: "bytes=0-99", size: 1000), ByteRange(first: 0, last: 99))
        XCTAssertEqual(ByteRange.parse(requestHeader: "bytes=900-", size: 1000), ByteRange(first: 900, last: 999))
        XCTAssertEqual(ByteRange.parse(requestHeader: "bytes=-10", size: 1000), ByteRange(first: 990, last: 999))
        XCTAssertEqual(ByteRange.parse(requestHeader: "bytes=-5000", size: 1000), ByteRange(first: 0, last: 999))
        XCTAssertEqual(ByteRange.parse(requestHeader: "bytes=500-5000", size: 1000), ByteRange(first: 500, last: 999), "clamped")
        for bad in ["bytes=1000-", "bytes=5-4", "bytes=0-1,5-6", "items=0-1", "bytes=x-1", "bytes=-0"] {
            XCTAssertNil(ByteRange.parse(requestHeader: bad, size: 1000), bad)
        }
    }

    func testUploadContentRanges() {
        XCTAssertEqual(ByteRange.parse(contentRange: "0-1023"), ByteRange(first: 0, last: 1023))
        XCTAssertEqual(ByteRange.parse(contentRange: "bytes 1024-2047/*"), ByteRange(first: 1024, last: 2047))
        XCTAssertEqual(ByteRange.parse(contentRange: "5-5")?.count, 1)
        XCTAssertNil(ByteRange.parse(contentRange: "9-1"))
        XCTAssertNil(ByteRange.parse(contentRange: "abc"))
    }
}
