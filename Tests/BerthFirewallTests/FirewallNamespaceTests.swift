import Foundation
import XCTest
@testable import BerthFirewall

/// libnftables and the kernel accept what Berth renders, and apply/add/remove/removeAll change
/// exactly Berth's tables, in a private network namespace.
final class FirewallNamespaceTests: NamespaceTestCase {
    private var namespace = ""
    private var firewall = Firewall()

    override func setUpWithError() throws {
        try super.setUpWithError()
        namespace = try makeNamespace("host")
        firewall = Firewall(table: "berth", namespace: namespace)
    }

    func testDryRunAcceptsEveryModel() throws {
        let models: [(String, [BridgeNetwork], [PortForward])] = [
            ("nothing", [], []),
            ("one network", [Sample.web], [Sample.http]),
            ("internal", [Sample.internalOnly], []),
            ("icc off", [Sample.isolated], [Sample.dns]),
            ("all three", [Sample.web, Sample.isolated, Sample.internalOnly], [Sample.http, Sample.dns]),
            ("many forwards", [Sample.web], Sample.manyForwards(500)),
        ]
        for (name, networks, forwards) in models {
            XCTAssertNoThrow(try firewall.check(networks: networks, forwards: forwards), name)
        }
        XCTAssertFalse(try listRuleset(in: namespace).contains("berth"), "a dry run changes nothing")
    }

    func testDryRunReportsLibnftablesErrors() {
        XCTAssertThrowsError(try NFTables.run("add rule ip berth nowhere drop", in: namespace, dryRun: true)) { error in
            XCTAssertTrue("\(error)".contains("nowhere") || "\(error)".contains("No such file"), "\(error)")
        }
    }

    func testApplyCreatesRulesAndMapElements() throws {
        try firewall.apply(networks: [Sample.web, Sample.isolated, Sample.internalOnly], forwards: [Sample.http, Sample.dns])
        let ip = try listTable("ip", in: namespace)
        for line in [
            "tcp . 8080 : 172.18.0.2 . 80",
            "127.0.0.1 . udp . 5353 : 172.18.0.3 . 53",
            "fib daddr type local jump published",
            "type filter hook prerouting priority raw; policy accept;",
            "iif != \"lo\" ip daddr 127.0.0.0/8 drop",
            "iif != \"lo\" ip saddr 127.0.0.0/8 drop",
            "ip saddr 172.18.0.0/16 oifname != \"berth0\" masquerade",
            "ip saddr 127.0.0.0/8 oifname @bridges masquerade",
            "ct status dnat accept",
            "iifname \"br-int\" oifname != \"br-int\" drop",
        ] {
            XCTAssertTrue(ip.contains(line), "missing \(line) in\n\(ip)")
        }
        let bridge = try listTable("bridge", in: namespace)
        XCTAssertTrue(bridge.contains("ip saddr 172.19.0.0/16 drop"), bridge)
    }

    func testApplyTwiceGivesTheSameRuleset() throws {
        let networks = [Sample.web, Sample.isolated]
        try firewall.apply(networks: networks, forwards: [Sample.http])
        let first = try listRuleset(in: namespace)
        try firewall.apply(networks: networks, forwards: [Sample.http])
        XCTAssertEqual(try listRuleset(in: namespace), first)
    }

    func testApplyReplacesEverythingAndDropsTheBridgeTableWhenUnneeded() throws {
        try firewall.apply(networks: [Sample.web, Sample.isolated], forwards: [Sample.http])
        try firewall.apply(networks: [Sample.web], forwards: [Sample.dns])
        let ruleset = try listRuleset(in: namespace)
        XCTAssertFalse(ruleset.contains("table bridge berth"))
        XCTAssertFalse(ruleset.contains("br-iso"))
        XCTAssertFalse(ruleset.contains("tcp . 8080"))
        XCTAssertTrue(ruleset.contains("127.0.0.1 . udp . 5353"))
    }

    func testApplyLeavesOtherTablesAlone() throws {
        _ = try NFTables.run("""
            table inet filter {
                chain forward {
                    type filter hook forward priority filter; policy accept;
                    meta l4proto tcp ct original proto-dst 8080 drop
                }
            }
            """, in: namespace)
        try firewall.apply(networks: [Sample.web], forwards: [Sample.http])
        try firewall.removeAll()
        let ruleset = try listRuleset(in: namespace)
        XCTAssertTrue(ruleset.contains("meta l4proto tcp ct original proto-dst 8080 drop"), ruleset)
        XCTAssertFalse(ruleset.contains("berth"))
    }

    func testAddAndRemoveChangeOnlyMapElements() throws {
        try firewall.apply(networks: [Sample.web], forwards: [])
        let empty = try listRuleset(in: namespace)
        try firewall.add([Sample.http, Sample.dns])
        let ip = try listTable("ip", in: namespace)
        XCTAssertTrue(ip.contains("tcp . 8080 : 172.18.0.2 . 80"))
        XCTAssertTrue(ip.contains("127.0.0.1 . udp . 5353 : 172.18.0.3 . 53"))
        XCTAssertEqual(withoutElements(try listRuleset(in: namespace)), withoutElements(empty), "only elements changed")
        try firewall.remove([Sample.http, Sample.dns])
        XCTAssertEqual(try listRuleset(in: namespace), empty)
        // Removing again is a no-op, not an error.
        try firewall.remove([Sample.http])
        XCTAssertEqual(try listRuleset(in: namespace), empty)
    }

    func testAddingAnExistingKeyFailsAndAddsNothing() throws {
        try firewall.apply(networks: [Sample.web], forwards: [Sample.http])
        let before = try listRuleset(in: namespace)
        var sameKey = Sample.http
        sameKey.containerIP = "172.18.0.9"
        let fresh = PortForward(proto: .udp, hostPort: 9999, containerIP: "172.18.0.4", containerPort: 99)
        XCTAssertThrowsError(try firewall.add([fresh, sameKey])) { error in
            XCTAssertTrue("\(error)".contains("File exists"), "\(error)")
        }
        XCTAssertEqual(try listRuleset(in: namespace), before)
    }

    func testRemovingAForwardThatNowLeadsElsewhereFailsAndRemovesNothing() throws {
        try firewall.apply(networks: [Sample.web], forwards: [Sample.http, Sample.dns])
        let before = try listRuleset(in: namespace)
        var stale = Sample.http
        stale.containerIP = "172.18.0.9"
        XCTAssertThrowsError(try firewall.remove([Sample.dns, stale]))
        XCTAssertEqual(try listRuleset(in: namespace), before)
    }

    func testRemoveAllLeavesNoBerthTableAndToleratesAbsence() throws {
        try firewall.removeAll()
        try firewall.apply(networks: [Sample.web, Sample.isolated], forwards: [Sample.http])
        try firewall.removeAll()
        XCTAssertEqual(try listRuleset(in: namespace).trimmingCharacters(in: .whitespacesAndNewlines), "")
    }

    /// The listing with every `elements = { ... }` block taken out.
    private func withoutElements(_ listing: String) -> String {
        var kept: [Substring] = []
        var inElements = false
        for line in listing.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.contains("elements = {") { inElements = true }
            if !inElements { kept.append(line) }
            if inElements && line.hasSuffix("}") { inElements = false }
        }
        return kept.joined(separator: "\n")
    }
}
