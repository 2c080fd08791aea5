import BerthNetlink
import BerthOS
import Foundation
import XCTest

/// Root-only tests that build their own network namespaces under a temporary directory and
/// never touch the host's links: everything goes through Netlink(namespace:).
class NamespaceTestCase: XCTestCase {
    var directory = ""
    private var pinned: [String] = []

    override func setUpWithError() throws {
        try XCTSkipIf(geteuid() != 0, "network namespaces need root")
        var template = Array("/tmp/berth-nl-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw SystemError("mkdtemp") }
        directory = String(cString: made)
    }

    override func tearDown() {
        for path in pinned { NetworkNamespace.remove(at: path) }
        pinned = []
        if !directory.isEmpty { try? FileSystem.removeTree(directory) }
    }

    /// A fresh namespace at <temp>/<name>, removed in tearDown.
    func makeNamespace(_ name: String) throws -> String {
        let path = directory + "/" + name
        pinned.append(path)
        try NetworkNamespace.create(at: path)
        return path
    }

    /// `ip -j ARGS` run inside the namespace at `path`, parsed.
    func ip(_ path: String, _ arguments: String...) throws -> [[String: Any]] {
        let output = try Command.output(path: "/usr/bin/nsenter",
                                        argv: ["nsenter", "--net=\(path)", "/usr/sbin/ip", "-j"] + arguments)
        let json = try JSONSerialization.jsonObject(with: Data(output.isEmpty ? Array("[]".utf8) : output))
        return try XCTUnwrap(json as? [[String: Any]], "ip -j \(arguments) gave \(String(decoding: output, as: UTF8.self))")
    }

    func assertNetlinkError<T>(_ code: NetlinkError.Code, _ body: @autoclosure () throws -> T,
                               file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            guard let error = error as? NetlinkError else {
                return XCTFail("expected NetlinkError, got \(error)", file: file, line: line)
            }
            XCTAssertEqual(error.code, code, "message: \(error.message)", file: file, line: line)
        }
    }
}

/// Two namespaces joined like a Docker bridge network: ns1 holds bridge br0 (172.18.0.1/16)
/// and veth0 enslaved to it; ns2 holds the peer as eth0 (172.18.0.2/16, default via br0).
struct BridgedPair {
    static let mac = "02:42:ac:12:00:02"
    let host: Netlink
    let container: Netlink

    init(host hostPath: String, container containerPath: String, mtu: UInt32 = 1400) throws {
        host = try Netlink(namespace: hostPath)
        try host.addBridge(name: "br0", mtu: mtu)
        try host.addAddress("br0", cidr: "172.18.0.1/16")
        try host.setUp("br0")
        try host.addVeth(name: "veth0", peer: "eth0", peerNamespace: containerPath, peerMAC: Self.mac, mtu: mtu)
        try host.setMaster("veth0", bridge: "br0")
        try host.setUp("veth0")
        container = try Netlink(namespace: containerPath)
        try container.addAddress("eth0", cidr: "172.18.0.2/16")
        try container.setUp("eth0")
        try container.addRoute(destination: "0.0.0.0/0", gateway: "172.18.0.1", device: "eth0")
    }
}
