import BerthNetlink
import Glibc
import XCTest
@testable import BerthFirewall

/// A test case that works in private network namespaces pinned under a temporary directory,
/// all removed in tearDown whatever happened. Skips unless run as root.
class NamespaceTestCase: XCTestCase {
    private(set) var directory = ""
    private var pinned: [String] = []

    override func setUpWithError() throws {
        try XCTSkipUnless(geteuid() == 0, "needs root for network namespaces and nftables")
        var template = Array("/tmp/berth-firewall-XXXXXX".utf8CString)
        guard let path = mkdtemp(&template) else { throw XCTSkip("mkdtemp failed") }
        directory = String(cString: path)
    }

    override func tearDown() {
        for path in pinned.reversed() { NetworkNamespace.remove(at: path) }
        pinned = []
        if !directory.isEmpty { rmdir(directory) }
        super.tearDown()
    }

    /// A fresh network namespace (loopback up) pinned at <directory>/<name>.
    func makeNamespace(_ name: String) throws -> String {
        let path = directory + "/" + name
        try NetworkNamespace.create(at: path)
        pinned.append(path)
        return path
    }

    /// `list table <family> <table>` in `namespace`, as nft prints it.
    func listTable(_ family: String, _ table: String = "berth", in namespace: String) throws -> String {
        try NFTables.run("list table \(family) \(table)", in: namespace)
    }

    /// The whole ruleset of `namespace`, as nft prints it.
    func listRuleset(in namespace: String) throws -> String {
        try NFTables.run("list ruleset", in: namespace)
    }
}

/// The models the tests share.
enum Sample {
    static let web = BridgeNetwork(bridge: "berth0", subnet: "172.18.0.0/16")
    static let isolated = BridgeNetwork(bridge: "br-iso", subnet: "172.19.0.0/16", interContainer: false)
    static let internalOnly = BridgeNetwork(bridge: "br-int", subnet: "172.20.0.0/16", isInternal: true)

    static let http = PortForward(proto: .tcp, hostPort: 8080, containerIP: "172.18.0.2", containerPort: 80)
    static let dns = PortForward(proto: .udp, hostIP: "127.0.0.1", hostPort: 5353,
                                 containerIP: "172.18.0.3", containerPort: 53)

    /// `count` forwards alternating wildcard and address-bound, TCP and UDP, all distinct keys.
    static func manyForwards(_ count: Int) -> [PortForward] {
        (0..<count).map { (i: Int) -> PortForward in
            let proto: PortProtocol = i % 3 == 0 ? .udp : .tcp
            let hostIP: String? = i % 2 == 0 ? nil : "10.0.\(i % 200).1"
            let containerIP = "172.18.\(i / 250).\(i % 250 + 2)"
            return PortForward(proto: proto, hostIP: hostIP, hostPort: UInt16(10000 + i),
                               containerIP: containerIP, containerPort: UInt16(80 + i % 5))
        }
    }
}
