import Foundation
import BerthNetlink
import XCTest
@testable import BerthFirewall

/// The iptables backend in a private network namespace: iptables-restore accepts what Berth
/// renders, and apply/add/remove/removeAll change exactly Berth's chains and one jump each.
final class IPTablesNamespaceTests: NamespaceTestCase {
    private var namespace = ""
    private var firewall = Firewall()

    override func setUpWithError() throws {
        try XCTSkipIf(IPTables.locate("iptables-restore") == nil, "iptables is not installed")
        try super.setUpWithError()
        namespace = try makeNamespace("host")
        firewall = Firewall(table: "berth", namespace: namespace, backend: .iptables)
    }

    func testDetectBackendFindsNFTablesHere() throws {
        XCTAssertEqual(Firewall.detectBackend(), .nftables)
        XCTAssertEqual(Firewall.detectBackend(namespace: namespace), .nftables)
    }

    func testCheckChangesNothing() throws {
        try firewall.check(networks: [Sample.web, Sample.internalOnly], forwards: Sample.manyForwards(500))
        XCTAssertFalse(try save().contains("BERTH"))
    }

    func testApplyCreatesChainsRulesAndJumps() throws {
        try firewall.apply(networks: [Sample.web, Sample.internalOnly], forwards: [Sample.http, Sample.dns])
        let dump = try save()
        for line in [
            "-A PREROUTING -j BERTH-LOOPBACK",
            "-A BERTH-LOOPBACK -d 127.0.0.0/8 ! -i lo -j DROP",
            "-A BERTH-LOOPBACK -s 127.0.0.0/8 ! -i lo -j DROP",
            "-A PREROUTING -m addrtype --dst-type LOCAL -j BERTH-DNAT",
            "-A OUTPUT -m addrtype --dst-type LOCAL -j BERTH-DNAT",
            "-A POSTROUTING -j BERTH-POSTROUTING",
            "-A FORWARD -j BERTH-FORWARD",
            "-A BERTH-DNAT -d 127.0.0.1/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 172.18.0.3:53",
            "-A BERTH-DNAT -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.18.0.2:80",
            "-A BERTH-POSTROUTING -s 127.0.0.0/8 -o berth0 -j MASQUERADE",
            "-A BERTH-POSTROUTING -s 172.18.0.0/16 -o berth0 -m conntrack --ctstate DNAT -j MASQUERADE",
            "-A BERTH-POSTROUTING -s 172.18.0.0/16 ! -o berth0 -j MASQUERADE",
            "-A BERTH-FORWARD -i br-int ! -o br-int -j DROP",
            "-A BERTH-FORWARD ! -i br-int -o br-int -j DROP",
            "-A BERTH-FORWARD -m conntrack --ctstate DNAT -j ACCEPT",
            "-A BERTH-FORWARD -i berth0 ! -o berth0 -j BERTH-BRIDGES",
            "-A BERTH-BRIDGES -o br-int -j DROP",
        ] {
            XCTAssertTrue(dump.contains(line + "\n"), "missing \(line) in\n\(dump)")
        }
        XCTAssertFalse(dump.contains("-s 172.20.0.0/16 ! -o br-int -j MASQUERADE"), "internal networks are not masqueraded")
        // Internal drops come before every accept.
        let forward = dump.split(separator: "\n").filter { $0.hasPrefix("-A BERTH-FORWARD") }
        XCTAssertEqual(forward.first, "-A BERTH-FORWARD -i br-int ! -o br-int -j DROP")
    }

    func testApplyTwiceGivesTheSameRulesAndOneJumpPerBuiltInChain() throws {
        try firewall.apply(networks: [Sample.web, Sample.internalOnly], forwards: [Sample.http, Sample.dns])
        let first = try save()
        try firewall.apply(networks: [Sample.web, Sample.internalOnly], forwards: [Sample.http, Sample.dns])
        let second = try save()
        XCTAssertEqual(second, first)
        // PREROUTING twice: once in raw (loopback), once in nat (DNAT).
        for (chain, count) in [("PREROUTING", 2), ("OUTPUT", 1), ("POSTROUTING", 1), ("FORWARD", 1)] {
            let jumps = second.split(separator: "\n").filter { $0.hasPrefix("-A \(chain) ") && $0.contains("-j BERTH-") }
            XCTAssertEqual(jumps.count, count, "\(chain) in\n\(second)")
        }
    }

    func testApplyReplacesEverythingAndKeepsTheOperatorsRulesInPlace() throws {
        try iptables("-A", "FORWARD", "-p", "tcp", "--dport", "22", "-j", "ACCEPT")
        try firewall.apply(networks: [Sample.web, Sample.internalOnly], forwards: [Sample.http])
        try iptables("-I", "FORWARD", "1", "-p", "tcp", "--dport", "23", "-j", "DROP")
        try firewall.apply(networks: [Sample.web], forwards: [Sample.dns])
        let dump = try save()
        XCTAssertFalse(dump.contains("br-int"), dump)
        XCTAssertFalse(dump.contains("--dport 8080"), dump)
        XCTAssertTrue(dump.contains("--dport 5353"), dump)
        let forward = dump.split(separator: "\n").filter { $0.hasPrefix("-A FORWARD ") }
        XCTAssertEqual(forward, [
            "-A FORWARD -p tcp -m tcp --dport 23 -j DROP",
            "-A FORWARD -j BERTH-FORWARD",
            "-A FORWARD -p tcp -m tcp --dport 22 -j ACCEPT",
        ])
    }

    func testDualStackNetworkGetsIPv6ChainsWithoutDNAT() throws {
        var dual = Sample.web
        dual.subnet6 = "fd00:1::/64"
        try firewall.apply(networks: [dual], forwards: [Sample.http])
        let dump = try save(ipv6: true)
        XCTAssertTrue(dump.contains("-A BERTH-POSTROUTING -s fd00:1::/64 ! -o berth0 -j MASQUERADE"), dump)
        XCTAssertTrue(dump.contains("-A FORWARD -j BERTH-FORWARD"), dump)
        XCTAssertTrue(dump.contains("-A BERTH-BRIDGES -o berth0 -j DROP"), dump)
        XCTAssertFalse(dump.contains("DNAT"), dump)
        // Back to IPv4 only: the IPv6 chains go.
        try firewall.apply(networks: [Sample.web], forwards: [Sample.http])
        XCTAssertFalse(try save(ipv6: true).contains("BERTH"))
    }

    func testAddAndRemoveChangeOnlyTheDNATChain() throws {
        try firewall.apply(networks: [Sample.web], forwards: [])
        let empty = try save()
        try firewall.add([Sample.http, Sample.dns])
        let added = try save()
        let dnat = added.split(separator: "\n").filter { $0.hasPrefix("-A BERTH-DNAT ") }
        XCTAssertEqual(dnat, [
            "-A BERTH-DNAT -d 127.0.0.1/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 172.18.0.3:53",
            "-A BERTH-DNAT -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.18.0.2:80",
        ], "address-bound forwards first")
        XCTAssertEqual(withoutDNAT(added), withoutDNAT(empty), "only the DNAT chain changed")
        try firewall.remove([Sample.http, Sample.dns])
        XCTAssertEqual(try save(), empty)
        // Removing again is a no-op, not an error.
        try firewall.remove([Sample.http])
        XCTAssertEqual(try save(), empty)
    }

    func testAddingAnExistingKeyFailsAndAddsNothing() throws {
        try firewall.apply(networks: [Sample.web], forwards: [Sample.http])
        let before = try save()
        var sameKey = Sample.http
        sameKey.containerIP = "172.18.0.9"
        let fresh = PortForward(proto: .udp, hostPort: 9999, containerIP: "172.18.0.4", containerPort: 99)
        XCTAssertThrowsError(try firewall.add([fresh, sameKey])) { error in
            XCTAssertTrue("\(error)".contains("0.0.0.0:8080/tcp"), "\(error)")
        }
        XCTAssertEqual(try save(), before)
    }

    func testAddBeforeApplyFails() {
        XCTAssertThrowsError(try firewall.add([Sample.http])) { error in
            XCTAssertTrue("\(error)".contains("BERTH-DNAT"), "\(error)")
        }
    }

    func testRemovingAForwardThatNowLeadsElsewhereFailsAndRemovesNothing() throws {
        try firewall.apply(networks: [Sample.web], forwards: [Sample.http, Sample.dns])
        let before = try save()
        var stale = Sample.http
        stale.containerIP = "172.18.0.9"
        XCTAssertThrowsError(try firewall.remove([Sample.dns, stale]))
        XCTAssertEqual(try save(), before)
    }

    func testRemoveAllLeavesNoBerthChainOrJumpAndToleratesAbsence() throws {
        try firewall.removeAll()
        try iptables("-A", "FORWARD", "-p", "tcp", "--dport", "22", "-j", "ACCEPT")
        var dual = Sample.web
        dual.subnet6 = "fd00:1::/64"
        try firewall.apply(networks: [dual, Sample.internalOnly], forwards: [Sample.http, Sample.dns])
        try firewall.removeAll()
        let dump = try save(), dump6 = try save(ipv6: true)
        XCTAssertFalse(dump.contains("BERTH"), dump)
        XCTAssertFalse(dump6.contains("BERTH"), dump6)
        XCTAssertTrue(dump.contains("-A FORWARD -p tcp -m tcp --dport 22 -j ACCEPT"), "the operator's rule stays")
        try firewall.removeAll()
    }

    func testTwoTablesNeverShareChains() throws {
        let other = Firewall(table: "berth2", namespace: namespace, backend: .iptables)
        try firewall.apply(networks: [Sample.web], forwards: [Sample.http])
        try other.apply(networks: [Sample.internalOnly], forwards: [Sample.dns])
        try firewall.removeAll()
        let dump = try save()
        XCTAssertFalse(dump.contains("BERTH-"), dump)
        XCTAssertTrue(dump.contains("-A BERTH2-DNAT -d 127.0.0.1/32"), dump)
        XCTAssertTrue(dump.contains("-A FORWARD -j BERTH2-FORWARD"), dump)
    }

    func testIccOffWithoutBridgeNetfilterIsRefused() throws {
        let present = try NetworkNamespace.run(in: namespace) {
            (try? Sysctl.read("net.bridge.bridge-nf-call-iptables")) != nil
        }
        if present {
            try NetworkNamespace.run(in: namespace) { try Sysctl.write("net.bridge.bridge-nf-call-iptables", "0") }
        }
        XCTAssertThrowsError(try firewall.apply(networks: [Sample.isolated], forwards: [])) { error in
            XCTAssertEqual((error as? FirewallError)?.code, .unsupported, "\(error)")
        }
        XCTAssertFalse(try save().contains("BERTH"))
        guard present else { return }
        try NetworkNamespace.run(in: namespace) { try Sysctl.write("net.bridge.bridge-nf-call-iptables", "1") }
        try firewall.apply(networks: [Sample.isolated], forwards: [])
        XCTAssertTrue(try save().contains("-A BERTH-FORWARD -i br-iso -o br-iso -j DROP"))
    }

    // MARK: helpers

    private func save(ipv6: Bool = false) throws -> String {
        let dump = try IPTables.run(ipv6 ? "ip6tables-save" : "iptables-save", [], namespace: namespace)
        // Drop the "# Generated/Completed on <time>" comments and the packet counters.
        return dump.split(separator: "\n").filter { !$0.hasPrefix("#") }
            .map { line in line.hasPrefix(":") ? String(line.split(separator: " ").prefix(2).joined(separator: " ")) : String(line) }
            .joined(separator: "\n") + "\n"
    }

    private func iptables(_ arguments: String...) throws {
        _ = try IPTables.run("iptables", arguments, namespace: namespace)
    }

    private func withoutDNAT(_ dump: String) -> String {
        dump.split(separator: "\n").filter { !$0.hasPrefix("-A BERTH-DNAT ") }.joined(separator: "\n")
    }
}
