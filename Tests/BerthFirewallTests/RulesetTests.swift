import XCTest
@testable import BerthFirewall

/// Rendering and validation: pure text, no root needed.
final class RulesetTests: XCTestCase {
    func testRenderReplacesBothTablesBeforeDefiningThem() {
        let script = Firewall.render(table: "berth", networks: [], forwards: [])
        XCTAssertTrue(script.hasPrefix("""
            add table ip berth
            delete table ip berth
            add table ip6 berth
            delete table ip6 berth
            add table bridge berth
            delete table bridge berth
            table ip berth {
            """))
        XCTAssertFalse(script.contains("table bridge berth {"), "no bridge table without an icc=false network")
    }

    func testRenderMasqueradesOnlyNetworksThatAskForIt() {
        let script = Firewall.render(table: "berth", networks: [Sample.web, Sample.internalOnly], forwards: [])
        XCTAssertTrue(script.contains("ip saddr 172.18.0.0/16 oifname != \"berth0\" masquerade"))
        XCTAssertFalse(script.contains("ip saddr 172.20.0.0/16 oifname != \"br-int\" masquerade"))
        XCTAssertTrue(script.contains("iifname \"br-int\" oifname != \"br-int\" drop"))
        XCTAssertTrue(script.contains("oifname \"br-int\" iifname != \"br-int\" drop"))
    }

    func testRenderPutsForwardsInTheMapOfTheirKind() {
        let script = Firewall.render(table: "berth", networks: [Sample.web], forwards: [Sample.http, Sample.dns])
        XCTAssertTrue(script.contains("tcp . 8080 : 172.18.0.2 . 80"))
        XCTAssertTrue(script.contains("127.0.0.1 . udp . 5353 : 172.18.0.3 . 53"))
    }

    func testRenderIsolatesIccOffNetworkInBridgeTable() {
        let script = Firewall.render(table: "berth", networks: [Sample.web, Sample.isolated], forwards: [])
        XCTAssertTrue(script.contains("table bridge berth {"))
        XCTAssertTrue(script.contains("ip saddr 172.19.0.0/16 drop"))
        XCTAssertFalse(script.contains("ip saddr 172.18.0.0/16 drop"))
    }

    func testRenderDropsLoopbackAddressesNotArrivingOnLoBeforeConntrack() {
        // CVE-2020-8558: with or without networks, since published ports are DNATed on every interface.
        for networks in [[], [Sample.web, Sample.isolated]] {
            let script = Firewall.render(table: "berth", networks: networks, forwards: [Sample.dns])
            XCTAssertTrue(script.contains("""
                \tchain loopback {
                \t\ttype filter hook prerouting priority raw; policy accept;
                \t\tiif != "lo" ip daddr 127.0.0.0/8 drop
                \t\tiif != "lo" ip saddr 127.0.0.0/8 drop
                \t}
                """), script)
        }
        var dual = Sample.web
        dual.subnet6 = "fd00:1::/64"
        let script = Firewall.render(table: "berth", networks: [dual], forwards: [])
        let ip6 = script[script.range(of: "table ip6 berth {")!.lowerBound...]
        XCTAssertFalse(ip6.contains("::1"), "the kernel drops ::1 from other devices itself")
    }

    func testSubnetHostBitsAreDropped() {
        XCTAssertEqual(Ruleset.normalizedSubnet("172.18.3.4/16"), "172.18.0.0/16")
        XCTAssertEqual(Ruleset.normalizedSubnet("10.1.2.3/32"), "10.1.2.3/32")
        XCTAssertEqual(Ruleset.normalizedSubnet("10.1.2.3/0"), "0.0.0.0/0")
    }

    func testInvalidModelIsRejectedBeforeNft() {
        let firewall = Firewall(table: "berth")
        func code(_ body: () throws -> Void) -> FirewallError.Code? {
            do { try body(); return nil } catch { return (error as? FirewallError)?.code }
        }
        XCTAssertEqual(code { try firewall.apply(networks: [BridgeNetwork(bridge: "a\"b", subnet: "10.0.0.0/8")], forwards: []) },
                       .invalidArgument)
        XCTAssertEqual(code { try firewall.apply(networks: [BridgeNetwork(bridge: "br", subnet: "10.0.0.0/33")], forwards: []) },
                       .invalidArgument)
        XCTAssertEqual(code { try firewall.apply(networks: [Sample.web, Sample.web], forwards: []) }, .invalidArgument)
        XCTAssertEqual(code { try firewall.apply(networks: [], forwards: [Sample.http, Sample.http]) }, .invalidArgument)
        var badIP = Sample.http
        badIP.containerIP = "172.18.0"
        XCTAssertEqual(code { try firewall.add([badIP]) }, .invalidArgument)
        XCTAssertEqual(code { try Firewall(table: "berth; flush ruleset").removeAll() }, .invalidArgument)
    }
}
