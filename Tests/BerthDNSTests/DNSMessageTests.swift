import BerthDNS
import XCTest

final class DNSMessageTests: XCTestCase {
    func testQueryRoundTripsThroughTheWireFormat() throws {
        let query = DNSMessage.query(id: 42, name: "web.mynet.", type: .aaaa)
        let bytes = query.bytes()
        XCTAssertEqual(Array(bytes[0..<12]), [0, 42, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0])
        let parsed = try DNSMessage(parsing: bytes)
        XCTAssertEqual(parsed.questions, [DNSQuestion(name: DNSName("web.mynet"), type: .aaaa)])
        XCTAssertTrue(parsed.header.recursionDesired)
    }

    func testUnknownTypesAreKeptRaw() throws {
        var query = DNSMessage.query(name: "x", type: .a)
        query.questions[0].rawType = 65
        let parsed = try DNSMessage(parsing: query.bytes())
        XCTAssertEqual(parsed.questions.first?.rawType, 65)
        XCTAssertNil(parsed.questions.first?.type)
    }

    func testTruncatedMessagesThrow() {
        let bytes = DNSMessage.query(name: "web", type: .a).bytes()
        for length in 0..<bytes.count {
            XCTAssertThrowsError(try DNSMessage(parsing: Array(bytes[0..<length])), "length \(length)")
        }
    }

    func testCompressedNamesAreFollowedBackwardsOnly() throws {
        var message: [UInt8] = [0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]
        message += [3] + Array("web".utf8) + [0, 0, 1, 0, 1]
        message += [0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 2, 0x58, 0, 4, 10, 0, 0, 1]
        let parsed = try DNSMessage(parsing: message)
        XCTAssertEqual(parsed.answers.first?.name, DNSName("web"))
        XCTAssertEqual(parsed.answers.first?.addressText, "10.0.0.1")
        XCTAssertEqual(parsed.answers.first?.ttl, 600)
        message[message.count - 15] = 0x20  // pointer now aims forward
        XCTAssertThrowsError(try DNSMessage(parsing: message))
    }

    func testOddLabelBytesAreEscapedSoTheyCannotMatchPlainNames() {
        let name = DNSName(labels: [Array("a.b".utf8), [0x41, 0x07]])
        XCTAssertEqual(name.description, "a\\.b.A\\007")
        XCTAssertEqual(name.lowercasedText, "a\\.b.a\\007")
    }

    func testIPAddressText() {
        XCTAssertEqual(IPAddressText.ipv4Bytes("172.18.0.2"), [172, 18, 0, 2])
        XCTAssertNil(IPAddressText.ipv4Bytes("172.18.0"))
        XCTAssertNil(IPAddressText.ipv4Bytes("256.1.1.1"))
        XCTAssertEqual(IPAddressText.format(IPAddressText.ipv6Bytes("FD00:0:0:0:0:0:0:2")!), "fd00::2")
        XCTAssertEqual(IPAddressText.format(IPAddressText.ipv6Bytes("2001:db8:0:0:1:0:0:1")!), "2001:db8::1:0:0:1")
        XCTAssertEqual(IPAddressText.format(IPAddressText.ipv6Bytes("::")!), "::")
        XCTAssertEqual(IPAddressText.ipv6Bytes("::ffff:10.0.0.1")?.suffix(4), [10, 0, 0, 1])
        XCTAssertNil(IPAddressText.ipv6Bytes("1::2::3"))
        XCTAssertNil(IPAddressText.ipv6Bytes("1:2:3:4:5:6:7:8:9"))
        XCTAssertEqual(IPAddressText.reverseName("10.1.2.3"), "3.2.1.10.in-addr.arpa")
        XCTAssertEqual(IPAddressText.reverseName("2001:db8::1"),
                       "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa")
        XCTAssertTrue(IPAddressText.isLoopback("127.0.0.53"))
        XCTAssertTrue(IPAddressText.isLoopback("::1"))
        XCTAssertFalse(IPAddressText.isLoopback("10.0.0.1"))
        XCTAssertFalse(IPAddressText.isLoopback("::2"))
    }
}
