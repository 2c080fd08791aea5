import BerthDNS
import Glibc
import NIOPosix
import Synchronization
import XCTest

/// Names the "daemon" knows in these tests.
let containerNames: DNSLookup = { name, _ in
    switch name {
    case "web", "web.mynet": return .addresses(["172.18.0.2", "fd00:18::2"])
    case "db": return .addresses(["172.18.0.3"])
    case "2.0.18.172.in-addr.arpa": return .names(["web.mynet"])
    case "gone": return .nameError
    case "many": return .addresses((1...100).map { "10.0.0.\($0)" })
    default: return .forward
    }
}

/// The stand-in for the host's resolver that forwarded queries reach.
let upstreamNames: DNSLookup = { name, _ in
    switch name {
    case "example.com": return .addresses(["93.184.216.34"])
    case "big.example": return .addresses((1...100).map { "10.1.0.\($0)" })
    default: return .nameError
    }
}

final class DNSServerTests: XCTestCase {
    let server = DNSServer(group: MultiThreadedEventLoopGroup.singleton, forwardTimeout: .milliseconds(300))

    /// Serves `lookup` on fresh UDP+TCP sockets on one 127.0.0.1 port for the duration of `body`.
    func withServer<T>(
        upstreams: [DNSUpstream] = [], lookup: @escaping DNSLookup = containerNames,
        _ body: (UInt16) async throws -> T
    ) async throws -> T {
        let sockets = try TestSockets.serverPair()
        let endpoint = try await server.serve(
            udpSocket: sockets.udp, tcpSocket: sockets.tcp, upstreams: upstreams, lookup: lookup)
        do {
            let result = try await body(sockets.port)
            await endpoint.close()
            return result
        } catch {
            await endpoint.close()
            throw error
        }
    }

    func udp(_ query: DNSMessage, port: UInt16) async throws -> DNSMessage {
        let bytes = query.bytes()
        let reply = try await TestSockets.blocking { TestSockets.udpExchange(bytes, port: port) }
        return try DNSMessage(parsing: try XCTUnwrap(reply, "no UDP reply"))
    }

    func tcp(_ queries: [DNSMessage], port: UInt16) async throws -> [DNSMessage] {
        let bytes = queries.map { $0.bytes() }
        let replies = try await TestSockets.blocking { TestSockets.tcpExchange(bytes, port: port) }
        XCTAssertEqual(replies.count, queries.count, "missing TCP replies")
        return try replies.map { try DNSMessage(parsing: $0) }
    }

    func testAQueryForContainerNameAnswersItsIPv4AddressWithDockerTTL() async throws {
        try await withServer { port in
            let reply = try await udp(.query(id: 0x1234, name: "web", type: .a), port: port)
            XCTAssertEqual(reply.header.id, 0x1234)
            XCTAssertTrue(reply.header.isResponse)
            XCTAssertEqual(reply.header.responseCode, .noError)
            XCTAssertFalse(reply.header.isAuthoritative)
            XCTAssertTrue(reply.header.recursionAvailable)
            XCTAssertTrue(reply.header.recursionDesired)
            XCTAssertEqual(reply.questions, [DNSQuestion(name: DNSName("web"), type: .a)])
            XCTAssertEqual(reply.answers.map(\.addressText), ["172.18.0.2"])
            XCTAssertEqual(reply.answers.first?.ttl, 600)
            XCTAssertEqual(reply.answers.first?.name, DNSName("web"))
        }
    }

    func testAAAAQueryAnswersOnlyIPv6Addresses() async throws {
        try await withServer { port in
            let reply = try await udp(.query(name: "web.mynet.", type: .aaaa), port: port)
            XCTAssertEqual(reply.header.responseCode, .noError)
            XCTAssertEqual(reply.answers.map(\.type), [.aaaa])
            XCTAssertEqual(reply.answers.map(\.addressText), ["fd00:18::2"])
        }
    }

    func testNamesMatchCaseInsensitivelyAndTheQuestionIsEchoedAsAsked() async throws {
        let seen = Mutex<[String]>([])
        let recording: DNSLookup = { name, type in
            seen.withLock { $0.append(name) }
            return await containerNames(name, type)
        }
        try await withServer(lookup: recording) { port in
            let reply = try await udp(.query(name: "WeB.MyNet.", type: .a), port: port)
            XCTAssertEqual(reply.answers.map(\.addressText), ["172.18.0.2"])
            XCTAssertEqual(reply.questions.first?.name.description, "WeB.MyNet")
            XCTAssertEqual(reply.answers.first?.name.description, "WeB.MyNet")
        }
        XCTAssertEqual(seen.withLock { $0 }, ["web.mynet"])
    }

    func testAAAAForKnownNameWithoutIPv6IsNoErrorWithNoAnswersAndNotForwarded() async throws {
        // An upstream that would answer anything proves the query was not forwarded.
        let upstream = try TestSockets.boundUDP()
        let upstreamEndpoint = try await server.serve(
            udpSocket: upstream.fd, tcpSocket: nil, upstreams: [], lookup: { _, _ in .addresses(["1.2.3.4", "::1"]) })
        try await withServer(upstreams: [DNSUpstream(address: "127.0.0.1", port: upstream.port)]) { port in
            let reply = try await udp(.query(name: "db", type: .aaaa), port: port)
            XCTAssertEqual(reply.header.responseCode, .noError)
            XCTAssertEqual(reply.answers, [])
        }
        await upstreamEndpoint.close()
    }

    func testPTRQueryAnswersContainerName() async throws {
        try await withServer { port in
            let reverse = try XCTUnwrap(IPAddressText.reverseName("172.18.0.2"))
            let reply = try await udp(.query(name: reverse, type: .ptr), port: port)
            XCTAssertEqual(reply.header.responseCode, .noError)
            XCTAssertEqual(reply.answers.count, 1)
            XCTAssertEqual(reply.answers.first?.type, .ptr)
            XCTAssertEqual(reply.answers.first?.data, .name(DNSName("web.mynet")))
            XCTAssertEqual(reply.answers.first?.name.description, "2.0.18.172.in-addr.arpa")
        }
    }

    func testNameErrorFromLookupIsNXDOMAIN() async throws {
        try await withServer { port in
            let reply = try await udp(.query(name: "gone", type: .a), port: port)
            XCTAssertEqual(reply.header.responseCode, .nameError)
            XCTAssertEqual(reply.answers, [])
        }
    }

    func testUnknownNameIsForwardedToUpstreamOverRealSocketsKeepingTheClientsID() async throws {
        let upstream = try TestSockets.serverPair()
        let upstreamEndpoint = try await server.serve(
            udpSocket: upstream.udp, tcpSocket: upstream.tcp, upstreams: [], lookup: upstreamNames)
        // The first upstream is a port nobody listens on: the forwarder must move on.
        let dead = try TestSockets.boundUDP()
        close(dead.fd)
        let upstreams = [DNSUpstream(address: "127.0.0.1", port: dead.port),
                         DNSUpstream(address: "127.0.0.1", port: upstream.port)]
        try await withServer(upstreams: upstreams) { port in
            let reply = try await udp(.query(id: 0xBEEF, name: "Example.COM", type: .a), port: port)
            XCTAssertEqual(reply.header.id, 0xBEEF)
            XCTAssertEqual(reply.header.responseCode, .noError)
            XCTAssertEqual(reply.answers.map(\.addressText), ["93.184.216.34"])
            XCTAssertEqual(reply.questions.first?.name.description, "Example.COM")

            let missing = try await udp(.query(id: 7, name: "nowhere.example", type: .a), port: port)
            XCTAssertEqual(missing.header.id, 7)
            XCTAssertEqual(missing.header.responseCode, .nameError, "upstream NXDOMAIN is relayed")

            let overTCP = try await tcp([.query(id: 0xCAFE, name: "example.com", type: .a)], port: port)
            XCTAssertEqual(overTCP.first?.header.id, 0xCAFE)
            XCTAssertEqual(overTCP.first?.answers.map(\.addressText), ["93.184.216.34"])
        }
        await upstreamEndpoint.close()
    }

    func testTruncatedUpstreamAnswerIsRelayedAndTheTCPRetryIsForwardedOverTCP() async throws {
        let upstream = try TestSockets.serverPair()
        let upstreamEndpoint = try await server.serve(
            udpSocket: upstream.udp, tcpSocket: upstream.tcp, upstreams: [], lookup: upstreamNames)
        try await withServer(upstreams: [DNSUpstream(address: "127.0.0.1", port: upstream.port)]) { port in
            let overUDP = try await udp(.query(name: "big.example", type: .a), port: port)
            XCTAssertTrue(overUDP.header.isTruncated)
            XCTAssertLessThan(overUDP.answers.count, 100)
            let overTCP = try await tcp([.query(name: "big.example", type: .a)], port: port)
            XCTAssertEqual(overTCP.first?.header.isTruncated, false)
            XCTAssertEqual(overTCP.first?.answers.count, 100)
        }
        await upstreamEndpoint.close()
    }

    func testNoUpstreamGivesSERVFAIL() async throws {
        try await withServer(upstreams: []) { port in
            let reply = try await udp(.query(id: 99, name: "example.com", type: .a), port: port)
            XCTAssertEqual(reply.header.id, 99)
            XCTAssertEqual(reply.header.responseCode, .serverFailure)
            XCTAssertEqual(reply.questions.first?.name, DNSName("example.com"))
        }
    }

    func testDeadUpstreamsGiveSERVFAILAfterTheirTimeouts() async throws {
        // One upstream refuses (closed port), one swallows queries (bound socket nobody reads).
        let closed = try TestSockets.boundUDP()
        close(closed.fd)
        let silent = try TestSockets.boundUDP()
        defer { close(silent.fd) }
        let upstreams = [DNSUpstream(address: "127.0.0.1", port: closed.port),
                         DNSUpstream(address: "127.0.0.1", port: silent.port)]
        try await withServer(upstreams: upstreams) { port in
            let start = ContinuousClock.now
            let reply = try await udp(.query(name: "example.com", type: .a), port: port)
            XCTAssertEqual(reply.header.responseCode, .serverFailure)
            XCTAssertLessThan(ContinuousClock.now - start, .seconds(3))
            let overTCP = try await tcp([.query(name: "example.com", type: .a)], port: port)
            XCTAssertEqual(overTCP.first?.header.responseCode, .serverFailure)
        }
    }

    func testSlowForwardDoesNotHoldUpOtherQueries() async throws {
        let silent = try TestSockets.boundUDP()
        defer { close(silent.fd) }
        let slowServer = DNSServer(group: MultiThreadedEventLoopGroup.singleton, forwardTimeout: .seconds(2))
        let sockets = try TestSockets.serverPair()
        let endpoint = try await slowServer.serve(
            udpSocket: sockets.udp, tcpSocket: sockets.tcp,
            upstreams: [DNSUpstream(address: "127.0.0.1", port: silent.port)], lookup: containerNames)
        let port = sockets.port
        let stuck = (0..<20).map { DNSMessage.query(id: UInt16($0), name: "slow\($0).example", type: .a).bytes() }
        TestSockets.udpSend(stuck, port: port)
        let start = ContinuousClock.now
        let reply = try await udp(.query(name: "web", type: .a), port: port)
        XCTAssertEqual(reply.answers.map(\.addressText), ["172.18.0.2"])
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(1))
        await endpoint.close()
    }

    func testTCPAnswersSeveralQueriesOnOneConnection() async throws {
        try await withServer { port in
            let replies = try await tcp([
                .query(id: 1, name: "web", type: .a),
                .query(id: 2, name: "db", type: .a),
                .query(id: 3, name: "gone", type: .a),
            ], port: port)
            let byID = Dictionary(uniqueKeysWithValues: replies.map { ($0.header.id, $0) })
            XCTAssertEqual(byID[1]?.answers.map(\.addressText), ["172.18.0.2"])
            XCTAssertEqual(byID[2]?.answers.map(\.addressText), ["172.18.0.3"])
            XCTAssertEqual(byID[3]?.header.responseCode, .nameError)
        }
    }

    func testLargeLocalAnswerIsTruncatedOverUDPAndCompleteOverTCP() async throws {
        try await withServer { port in
            let overUDP = try await udp(.query(name: "many", type: .a), port: port)
            XCTAssertTrue(overUDP.header.isTruncated)
            XCTAssertLessThanOrEqual(overUDP.bytes().count, 512)
            let withEDNS = try await udp(.query(name: "many", type: .a, ednsUDPPayloadSize: 4096), port: port)
            XCTAssertFalse(withEDNS.header.isTruncated)
            XCTAssertEqual(withEDNS.answers.count, 100)
            XCTAssertEqual(withEDNS.ednsUDPPayloadSize, 4096, "an EDNS query gets an OPT record back")
            let overTCP = try await tcp([.query(name: "many", type: .a)], port: port)
            XCTAssertEqual(overTCP.first?.answers.count, 100)
        }
    }

    func testMalformedPacketsDoNotStopTheServer() async throws {
        try await withServer { port in
            var garbage: [[UInt8]] = [[], [0xFF], [1, 2, 3, 4, 5]]
            var generator = SystemRandomNumberGenerator()
            for length in [12, 13, 40, 300, 1400] {
                garbage.append((0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) })
            }
            TestSockets.udpSend(garbage, port: port)
            let tcpGarbage = [[0, 1, 2], garbage[6]]

            // A parseable header with a truncated question gets FORMERR with the same ID.
            let truncated: [UInt8] = [0xAB, 0xCD, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 3, 0x77, 0x65]
            let formErr = try await TestSockets.blocking { TestSockets.udpExchange(truncated, port: port) }
            let header = try DNSHeader(parsing: try XCTUnwrap(formErr))
            XCTAssertEqual(header.id, 0xABCD)
            XCTAssertEqual(header.responseCode, .formatError)

            // Garbage over TCP too, then the connection is of no more use but the server is.
            _ = try await TestSockets.blocking { TestSockets.tcpExchange(tcpGarbage, port: port, timeoutSeconds: 1) }

            let reply = try await udp(.query(name: "web", type: .a), port: port)
            XCTAssertEqual(reply.answers.map(\.addressText), ["172.18.0.2"])
            let overTCP = try await tcp([.query(name: "db", type: .a)], port: port)
            XCTAssertEqual(overTCP.first?.answers.map(\.addressText), ["172.18.0.3"])
        }
    }

    func testCompressionPointerLoopIsRejectedWithoutHanging() async throws {
        try await withServer { port in
            // The question name is a pointer to itself (offset 12).
            let selfLoop: [UInt8] = [0x00, 0x42, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 0x0C, 0, 1, 0, 1]
            // A label followed by a pointer back to that label: a forward-then-back cycle.
            let cycle: [UInt8] = [0x00, 0x43, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0x61, 0xC0, 0x0C, 0, 1, 0, 1]
            for (id, packet) in [(UInt16(0x42), selfLoop), (0x43, cycle)] {
                let reply = try await TestSockets.blocking { TestSockets.udpExchange(packet, port: port) }
                let header = try DNSHeader(parsing: try XCTUnwrap(reply))
                XCTAssertEqual(header.id, id)
                XCTAssertEqual(header.responseCode, .formatError)
            }
            let reply = try await udp(.query(name: "web", type: .a), port: port)
            XCTAssertEqual(reply.answers.count, 1)
        }
    }

    func testResponsesSentToTheServerAreIgnored() async throws {
        try await withServer { port in
            var header = DNSHeader(id: 5)
            header.isResponse = true
            var message = DNSMessage.query(id: 5, name: "web", type: .a)
            message.header = header
            let bytes = message.bytes()
            let reply = try await TestSockets.blocking { TestSockets.udpExchange(bytes, port: port, timeoutSeconds: 1) }
            XCTAssertNil(reply)
        }
    }

    func testCloseReleasesThePort() async throws {
        let sockets = try TestSockets.serverPair()
        let endpoint = try await server.serve(
            udpSocket: sockets.udp, tcpSocket: sockets.tcp, upstreams: [], lookup: containerNames)
        await endpoint.close()
        let again = try TestSockets.listeningTCP(port: sockets.port)
        close(again.fd)
    }
}
