import XCTest
@testable import BerthFirewall

/// Rendering for the iptables backend: pure text, no root needed.
final class IPTablesRulesetTests: XCTestCase {
    private let empty = IPTablesDump(parsing: "")

    func testScriptDeclaresBerthsChainsAndInsertsMissingJumpsAtTheTop() {
        let script = IPTablesRuleset.script(table: "berth", family: .ipv4, networks: [Sample.web, Sample.internalOnly],
                                            forwards: [Sample.http, Sample.dns], dump: empty)
        XCTAssertTrue(script.hasPrefix("""
            *raw
            :BERTH-LOOPBACK - [0:0]
            -I PREROUTING 1 -j BERTH-LOOPBACK
            -A BERTH-LOOPBACK -d 127.0.0.0/8 ! -i lo -j DROP
            -A BERTH-LOOPBACK -s 127.0.0.0/8 ! -i lo -j DROP
            COMMIT
            *nat
            :BERTH-DNAT - [0:0]
            :BERTH-POSTROUTING - [0:0]
            -I PREROUTING 1 -m addrtype --dst-type LOCAL -j BERTH-DNAT
            -I OUTPUT 1 -m addrtype --dst-type LOCAL -j BERTH-DNAT
            -I POSTROUTING 1 -j BERTH-POSTROUTING
            -A BERTH-DNAT -d 127.0.0.1/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 172.18.0.3:53
            -A BERTH-DNAT -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.18.0.2:80

            """), script)
        XCTAssertTrue(script.contains("*filter\n:BERTH-FORWARD - [0:0]\n:BERTH-BRIDGES - [0:0]\n-I FORWARD 1 -j BERTH-FORWARD\n"))
        XCTAssertFalse(script.contains("-s 172.20.0.0/16 ! -o br-int -j MASQUERADE"))
    }

    func testPresentJumpsAreNotInsertedAgain() {
        let dump = IPTablesDump(parsing: """
            *nat
            :PREROUTING ACCEPT [0:0]
            :BERTH-DNAT - [0:0]
            -A PREROUTING -p tcp -j ACCEPT
            -A PREROUTING -m addrtype --dst-type LOCAL -j BERTH-DNAT
            COMMIT
            *filter
            -A FORWARD -j BERTH-FORWARD
            COMMIT
            """)
        let script = IPTablesRuleset.script(table: "berth", family: .ipv4, networks: [Sample.web], forwards: [], dump: dump)
        XCTAssertFalse(script.contains("-I PREROUTING 1 -m addrtype"))
        XCTAssertFalse(script.contains("-I FORWARD"))
        XCTAssertTrue(script.contains("-I OUTPUT 1 -m addrtype --dst-type LOCAL -j BERTH-DNAT"))
        // The same built-in chain name in another table is another chain: raw's jump is missing.
        XCTAssertTrue(script.contains("*raw\n:BERTH-LOOPBACK - [0:0]\n-I PREROUTING 1 -j BERTH-LOOPBACK\n"))
    }

    func testLoopbackChainIsFilledWithoutNetworksAndItsJumpKeptWherePresent() {
        // CVE-2020-8558: published ports are DNATed on every interface, so no network is needed.
        let script = IPTablesRuleset.script(table: "berth", family: .ipv4, networks: [], forwards: [], dump: empty)
        XCTAssertTrue(script.contains("-A BERTH-LOOPBACK -d 127.0.0.0/8 ! -i lo -j DROP\n"), script)
        XCTAssertTrue(script.contains("-A BERTH-LOOPBACK -s 127.0.0.0/8 ! -i lo -j DROP\n"), script)
        let dump = IPTablesDump(parsing: "*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j BERTH-LOOPBACK\nCOMMIT\n")
        let again = IPTablesRuleset.script(table: "berth", family: .ipv4, networks: [], forwards: [], dump: dump)
        XCTAssertFalse(again.contains("-I PREROUTING 1 -j BERTH-LOOPBACK"), again)
        XCTAssertTrue(again.hasPrefix("*raw\n:BERTH-LOOPBACK - [0:0]\n-A BERTH-LOOPBACK"), again)
    }

    func testRemovalDeletesJumpsThenChainsAndNothingWhenAbsent() {
        XCTAssertNil(IPTablesRuleset.removal(table: "berth", family: .ipv4, dump: empty))
        let dump = IPTablesDump(parsing: """
            *filter
            :FORWARD ACCEPT [0:0]
            :BERTH-FORWARD - [0:0]
            :BERTH-BRIDGES - [0:0]
            -A FORWARD -j BERTH-FORWARD
            -A BERTH-FORWARD -i berth0 ! -o berth0 -j BERTH-BRIDGES
            COMMIT
            """)
        XCTAssertEqual(IPTablesRuleset.removal(table: "berth", family: .ipv4, dump: dump), """
            *filter
            :BERTH-FORWARD - [0:0]
            :BERTH-BRIDGES - [0:0]
            -D FORWARD -j BERTH-FORWARD
            -X BERTH-FORWARD
            -X BERTH-BRIDGES
            COMMIT

            """)
    }

    func testDNATRulesParseBackToTheirForwards() {
        let forwards = [Sample.dns, Sample.http] + Sample.manyForwards(20)
        let rules = IPTablesRuleset.dnatRules(chain: "BERTH-DNAT", forwards: forwards)
        let parsed = rules.compactMap { IPTablesRuleset.forward(fromDNATRule: String($0.dropFirst("-A BERTH-DNAT ".count))) }
        XCTAssertEqual(Set(parsed), Set(forwards))
        XCTAssertNil(IPTablesRuleset.forward(fromDNATRule: "-p tcp -m tcp --dport 80 -j ACCEPT"))
        XCTAssertNil(IPTablesRuleset.forward(fromDNATRule: "-s 10.0.0.0/8 -p tcp -m tcp --dport 80 -j DNAT --to-destination 1.2.3.4:5"))
    }

    func testTableNamesLongerThanChainNamesAllowAreRefused() {
        XCTAssertThrowsError(try Firewall(table: "a_very_long_table", backend: .iptables).removeAll()) { error in
            XCTAssertEqual((error as? FirewallError)?.code, .invalidArgument)
        }
        XCTAssertNoThrow(try IPTablesRuleset.validate(table: "berth_sixteen_ch"))
    }

    func testRenderShowsBothFamiliesForDualStack() {
        var dual = Sample.web
        dual.subnet6 = "fd00:1::/64"
        let script = Firewall.render(table: "berth", networks: [dual], forwards: [Sample.http], backend: .iptables)
        XCTAssertTrue(script.hasPrefix("# iptables-restore --noflush\n*raw\n"))
        XCTAssertTrue(script.contains("# ip6tables-restore --noflush\n*nat\n:BERTH-POSTROUTING - [0:0]\n"))
        let ipv6 = script[script.range(of: "# ip6tables-restore")!.lowerBound...]
        XCTAssertFalse(ipv6.contains("*raw"), "the kernel drops ::1 from other devices itself")
        XCTAssertTrue(script.contains("-A BERTH-POSTROUTING -s fd00:1::/64 ! -o berth0 -j MASQUERADE"))
    }
}
