import XCTest
@testable import BerthNetwork

final class AddressingTests: XCTestCase {
    func testIPv4ParsesOnlyStrictDottedQuads() {
        XCTAssertEqual(IPv4Address("172.17.0.2")?.value, 0xAC11_0002)
        for bad in ["172.17.0", "172.17.0.256", "01.2.3.4", "1.2.3.4.5", "", "a.b.c.d", "1..2.3", " 1.2.3.4"] {
            XCTAssertNil(IPv4Address(bad), bad)
        }
        XCTAssertEqual(IPv4Address(0xC0A8_0101).description, "192.168.1.1")
    }

    func testContainerMACFollowsDockersRule() {
        XCTAssertEqual(IPv4Address("172.17.0.2")!.containerMAC, "02:42:ac:11:00:02")
    }

    func testSubnetMathAndOverlap() throws {
        let s = try XCTUnwrap(IPv4Subnet("172.18.3.4/16"))
        XCTAssertEqual(s.canonical.description, "172.18.0.0/16")
        XCTAssertEqual(s.broadcast.description, "172.18.255.255")
        XCTAssertTrue(s.contains(IPv4Address("172.18.200.1")!))
        XCTAssertFalse(s.contains(IPv4Address("172.19.0.1")!))
        XCTAssertTrue(s.overlaps(IPv4Subnet("172.18.5.0/24")!))
        XCTAssertTrue(IPv4Subnet("172.0.0.0/8")!.overlaps(s))
        XCTAssertFalse(s.overlaps(IPv4Subnet("172.19.0.0/16")!))
        XCTAssertTrue(s.contains(IPv4Subnet("172.18.128.0/17")!))
        XCTAssertNil(IPv4Subnet("10.0.0.0/33"))
        XCTAssertNil(IPv4Subnet("10.0.0.0"))
    }

    func testAllocatorSkipsGatewayNetworkAndBroadcastAndHonoursTheRange() throws {
        var a = AddressAllocator(subnet: IPv4Subnet("10.0.0.0/29")!, gateway: IPv4Address("10.0.0.1"), range: nil)
        var got: [String] = []
        for _ in 0..<5 { got.append(try a.allocate().description) }
        XCTAssertEqual(got, ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"])
        XCTAssertThrowsError(try a.allocate()) { XCTAssertEqual(($0 as! NetworkError).code, .conflict) }
        a.release(IPv4Address("10.0.0.4")!)
        XCTAssertEqual(try a.allocate().description, "10.0.0.4")

        var r = AddressAllocator(subnet: IPv4Subnet("10.1.0.0/24")!, gateway: IPv4Address("10.1.0.1"), range: IPv4Subnet("10.1.0.128/25"))
        XCTAssertEqual(try r.allocate().description, "10.1.0.128")
    }

    func testAllocatorRefusesTakenForeignAndReservedAddresses() throws {
        var a = AddressAllocator(subnet: IPv4Subnet("10.2.0.0/24")!, gateway: IPv4Address("10.2.0.1"), range: nil)
        XCTAssertEqual(try a.allocate(IPv4Address("10.2.0.9")).description, "10.2.0.9")
        XCTAssertThrowsError(try a.allocate(IPv4Address("10.2.0.9"))) { XCTAssertEqual(($0 as! NetworkError).code, .conflict) }
        XCTAssertThrowsError(try a.allocate(IPv4Address("10.3.0.9"))) { XCTAssertEqual(($0 as! NetworkError).code, .invalidArgument) }
        XCTAssertThrowsError(try a.allocate(IPv4Address("10.2.0.1"))) { XCTAssertEqual(($0 as! NetworkError).code, .invalidArgument) }
        XCTAssertThrowsError(try a.allocate(IPv4Address("10.2.0.255"))) { XCTAssertEqual(($0 as! NetworkError).code, .invalidArgument) }
        // The next automatic one does not hand out the taken address.
        XCTAssertFalse(a.reserve(IPv4Address("10.2.0.9")!))
    }

    func testSubnetPoolAvoidsTakenPrefixes() {
        let taken = [IPv4Subnet("172.17.0.0/16")!, IPv4Subnet("172.18.4.0/24")!]
        XCTAssertEqual(SubnetPool.first(avoiding: taken)?.description, "172.19.0.0/16")
        let all = SubnetPool.defaults
        XCTAssertNil(SubnetPool.first(avoiding: all))
        XCTAssertEqual(all.count, 31)
    }
}

final class PortRequestTests: XCTestCase {
    func testBindingsAndPublishAll() throws {
        let r = try PortRequest.requests(
            bindings: ["80/tcp": [(hostIP: nil, hostPort: "8080")], "53/udp": [(hostIP: "127.0.0.1", hostPort: "")],
                       "90": [(hostIP: "0.0.0.0", hostPort: "9000-9010")]],
            exposed: ["80/tcp", "443/tcp"], publishAll: true)
        XCTAssertEqual(r.count, 4)
        XCTAssertTrue(r.contains(PortRequest(proto: .udp, containerPort: 53, hostIP: IPv4Address("127.0.0.1"), hostPorts: 0...0)))
        XCTAssertTrue(r.contains(PortRequest(proto: .tcp, containerPort: 80, hostIP: nil, hostPorts: 8080...8080)))
        XCTAssertTrue(r.contains(PortRequest(proto: .tcp, containerPort: 90, hostIP: nil, hostPorts: 9000...9010)))
        XCTAssertTrue(r.contains(PortRequest(proto: .tcp, containerPort: 443, hostIP: nil, hostPorts: 0...0)))
    }

    func testBadSpecsAreRefused() {
        for (key, port) in [("abc/tcp", "1"), ("80/sctp", "1"), ("0/tcp", "1"), ("80/tcp", "x"), ("80/tcp", "9-8"), ("80/tcp", "70000")] {
            XCTAssertThrowsError(try PortRequest.requests(bindings: [key: [(hostIP: nil, hostPort: port)]], exposed: [], publishAll: false),
                                 "\(key) \(port)") { XCTAssertEqual(($0 as! NetworkError).code, .invalidArgument) }
        }
        XCTAssertThrowsError(try PortRequest.requests(bindings: ["80/tcp": [(hostIP: "1.2.3", hostPort: "1")]], exposed: [], publishAll: false))
    }

    func testReservationHoldsThePortAndFindsAFreeOneInARange() throws {
        let first = try PortReservation.reserve(PortRequest(proto: .tcp, containerPort: 80, hostIP: IPv4Address("127.0.0.1"), hostPorts: 0...0))
        let port = first.port.hostPort
        XCTAssertGreaterThan(port, 0)
        XCTAssertThrowsError(try PortReservation.reserve(PortRequest(proto: .tcp, containerPort: 80, hostIP: IPv4Address("127.0.0.1"), hostPorts: port...port))) {
            XCTAssertEqual(($0 as! NetworkError).code, .conflict)
            XCTAssertTrue("\($0)".contains("port is already allocated"))
        }
        // UDP and TCP ports are separate.
        _ = try PortReservation.reserve(PortRequest(proto: .udp, containerPort: 80, hostIP: IPv4Address("127.0.0.1"), hostPorts: port...port))
        let next = try PortReservation.reserve(PortRequest(proto: .tcp, containerPort: 80, hostIP: IPv4Address("127.0.0.1"),
                                                           hostPorts: port...(port &+ 20)))
        XCTAssertNotEqual(next.port.hostPort, port)
    }
}

final class ContainerFilesTests: XCTestCase {
    func testHostsFileLayout() {
        let text = ContainerFiles.hosts(extraHosts: [(name: "db", address: "10.0.0.5")],
                                        own: [(address: "172.17.0.2", names: ["web.example", "web"])])
        XCTAssertTrue(text.hasPrefix("127.0.0.1\tlocalhost\n"))
        XCTAssertTrue(text.hasSuffix("10.0.0.5\tdb\n172.17.0.2\tweb.example web\n"))
    }

    func testExtraHostSyntax() throws {
        XCTAssertEqual(try ContainerFiles.parseExtraHost("db:10.0.0.5", gateway: nil).address, "10.0.0.5")
        XCTAssertEqual(try ContainerFiles.parseExtraHost("db=10.0.0.5", gateway: nil).name, "db")
        XCTAssertEqual(try ContainerFiles.parseExtraHost("gw:host-gateway", gateway: "172.17.0.1").address, "172.17.0.1")
        XCTAssertEqual(try ContainerFiles.parseExtraHost("v6:[::1]", gateway: nil).address, "::1")
        XCTAssertThrowsError(try ContainerFiles.parseExtraHost("nocolon", gateway: nil))
        XCTAssertThrowsError(try ContainerFiles.parseExtraHost("db:not-an-ip", gateway: nil))
        XCTAssertThrowsError(try ContainerFiles.parseExtraHost("gw:host-gateway", gateway: nil))
    }

    func testNetworkOptionsAreValidated() {
        XCTAssertThrowsError(try NetworkDefinition.validate(options: [NetworkDefinition.mtuOption: "abc"], driver: .bridge))
        XCTAssertThrowsError(try NetworkDefinition.validate(options: [NetworkDefinition.mtuOption: "50"], driver: .bridge))
        XCTAssertThrowsError(try NetworkDefinition.validate(options: [NetworkDefinition.bridgeNameOption: "a-name-far-too-long"], driver: .bridge))
        XCTAssertThrowsError(try NetworkDefinition.validate(options: [:], driver: .macvlan))
        XCTAssertNoThrow(try NetworkDefinition.validate(options: ["parent": "eth0", NetworkDefinition.iccOption: "false"], driver: .macvlan))
    }
}
