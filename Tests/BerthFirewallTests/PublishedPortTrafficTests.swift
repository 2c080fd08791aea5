import BerthNetlink
import Glibc
import XCTest
@testable import BerthFirewall

/// Real UDP traffic through Berth's rules: a "host" namespace with bridge berth0 (172.18.0.1/16)
/// and two "container" namespaces on it, c1 (172.18.0.2) and c2 (172.18.0.3). Subclassed to run
/// the same traffic through the iptables backend.
class PublishedPortTrafficTests: NamespaceTestCase {
    var backend: FirewallBackend { .nftables }

    private var host = "", c1 = "", c2 = ""
    private var firewall = Firewall()
    private var receiver: Int32 = -1

    override func setUpWithError() throws {
        try super.setUpWithError()
        host = try makeNamespace("host")
        c1 = try makeNamespace("c1")
        c2 = try makeNamespace("c2")
        let links = try Netlink(namespace: host)
        try links.addBridge(name: "berth0")
        try links.addAddress("berth0", cidr: "172.18.0.1/16")
        try links.setUp("berth0")
        for (index, (namespace, address)) in [(c1, "172.18.0.2/16"), (c2, "172.18.0.3/16")].enumerated() {
            let port = "veth\(index)"
            try links.addVeth(name: port, peer: "eth0", peerNamespace: namespace)
            try links.setMaster(port, bridge: "berth0")
            try links.setUp(port)
            let inside = try Netlink(namespace: namespace)
            try inside.addAddress("eth0", cidr: address)
            try inside.setUp("eth0")
            try inside.addRoute(destination: "0.0.0.0/0", gateway: "172.18.0.1", device: "eth0")
        }
        // What the daemon does for each bridge; sysctls under net.* are per namespace.
        try NetworkNamespace.run(in: host) {
            try Sysctl.write("net.ipv4.ip_forward", "1")
            try Sysctl.write("net/ipv4/conf/berth0/route_localnet", "1")
        }
        firewall = Firewall(table: "berth", namespace: host, backend: backend)
        receiver = try NetworkNamespace.bindSocket(in: c1, type: Int32(SOCK_DGRAM.rawValue), address: "0.0.0.0", port: 80)
    }

    override func tearDown() {
        if receiver >= 0 { close(receiver) }
        receiver = -1
        super.tearDown()
    }

    private let web = BridgeNetwork(bridge: "berth0", subnet: "172.18.0.0/16")
    private let published = PortForward(proto: .udp, hostPort: 8080, containerIP: "172.18.0.2", containerPort: 80)

    func testPublishedPortReachesContainerFromHostLoopbackAndBridgeAddress() throws {
        try firewall.apply(networks: [web], forwards: [published])
        try send("via loopback", from: host, to: "127.0.0.1", port: 8080)
        let first = receive()
        XCTAssertEqual(first?.payload, "via loopback")
        XCTAssertEqual(first?.source, "172.18.0.1", "127.0.0.1 must be masqueraded to the bridge address")
        try send("via bridge address", from: host, to: "172.18.0.1", port: 8080)
        XCTAssertEqual(receive()?.payload, "via bridge address")
    }

    func testAddressBoundForwardAnswersOnlyOnThatAddress() throws {
        try firewall.apply(networks: [web], forwards: [])
        try firewall.add([PortForward(proto: .udp, hostIP: "127.0.0.1", hostPort: 9090, containerIP: "172.18.0.2",
                                      containerPort: 80)])
        try send("elsewhere", from: host, to: "172.18.0.1", port: 9090)
        XCTAssertNil(receive(timeout: 300))
        try send("bound", from: host, to: "127.0.0.1", port: 9090)
        XCTAssertEqual(receive()?.payload, "bound")
    }

    func testRemovedForwardNoLongerDelivers() throws {
        try firewall.apply(networks: [web], forwards: [published])
        try firewall.remove([published])
        try send("gone", from: host, to: "127.0.0.1", port: 8080)
        XCTAssertNil(receive(timeout: 300))
    }

    func testHairpinFromContainerOnSameBridge() throws {
        try firewall.apply(networks: [web], forwards: [published])
        for bridgeNetfilter in try bridgeNetfilterModes() {
            try setBridgeNetfilter(bridgeNetfilter)
            try send("hairpin", from: c2, to: "172.18.0.1", port: 8080)
            let got = receive()
            XCTAssertEqual(got?.payload, "hairpin", "br_netfilter \(bridgeNetfilter)")
            XCTAssertEqual(got?.source, "172.18.0.1", "the reply must go back through the host to be un-DNATed")
        }
    }

    func testIccOffDropsContainerToContainerTrafficButNotHostTraffic() throws {
        var isolated = web
        isolated.interContainer = false
        for bridgeNetfilter in try bridgeNetfilterModes() {
            try setBridgeNetfilter(bridgeNetfilter)
            try firewall.apply(networks: [web], forwards: [published])
            try send("direct, icc on", from: c2, to: "172.18.0.2", port: 80)
            XCTAssertEqual(receive()?.source, "172.18.0.3", "br_netfilter \(bridgeNetfilter)")

            if backend == .iptables && !bridgeNetfilter {
                // Bridged frames never reach iptables: refused rather than silently not enforced.
                XCTAssertThrowsError(try firewall.apply(networks: [isolated], forwards: [published])) { error in
                    XCTAssertEqual((error as? FirewallError)?.code, .unsupported, "\(error)")
                }
                continue
            }
            try firewall.apply(networks: [isolated], forwards: [published])
            try send("direct, icc off", from: c2, to: "172.18.0.2", port: 80)
            XCTAssertNil(receive(timeout: 300), "br_netfilter \(bridgeNetfilter)")
            // Through the host to a neighbour's published port is container to container as well.
            try send("hairpin, icc off", from: c2, to: "172.18.0.1", port: 8080)
            XCTAssertNil(receive(timeout: 300), "br_netfilter \(bridgeNetfilter)")
            try send("from the host, icc off", from: host, to: "127.0.0.1", port: 8080)
            XCTAssertEqual(receive()?.payload, "from the host, icc off", "br_netfilter \(bridgeNetfilter)")
        }
    }

    /// CVE-2020-8558: route_localnet on the bridge must not open the host's loopback to a
    /// container with CAP_NET_RAW. Raw frames from c2 to the bridge's MAC.
    func testCraftedFramesWithLoopbackAddressesFromTheBridgeAreDropped() throws {
        try firewall.apply(networks: [web], forwards: [published])
        // Turns off the kernel's own refusal of a local source address, as some hosts have it.
        try NetworkNamespace.run(in: host) { try Sysctl.write("net.ipv4.conf.all.accept_local", "1") }
        let loopback = try NetworkNamespace.bindSocket(in: host, type: Int32(SOCK_DGRAM.rawValue), address: "127.0.0.1", port: 7101)
        defer { close(loopback) }
        let bridgeAddress = try NetworkNamespace.bindSocket(in: host, type: Int32(SOCK_DGRAM.rawValue), address: "172.18.0.1",
                                                            port: 7102)
        defer { close(bridgeAddress) }
        // The frames are well formed: to the bridge's address they arrive.
        try sendFrame("witness", source: "172.18.0.3", destination: "172.18.0.1", port: 7102)
        XCTAssertEqual(receive(on: bridgeAddress)?.payload, "witness")

        try sendFrame("to loopback", source: "172.18.0.3", destination: "127.0.0.1", port: 7101)
        XCTAssertNil(receive(on: loopback, timeout: 300))
        try sendFrame("spoofed loopback source", source: "127.0.0.1", destination: "172.18.0.1", port: 7102)
        XCTAssertNil(receive(on: bridgeAddress, timeout: 300))
        // Published ports are DNATed before routing: 127.0.0.1 from the wire would reach c1.
        try sendFrame("to a published port at loopback", source: "172.18.0.3", destination: "127.0.0.1", port: 8080)
        XCTAssertNil(receive(timeout: 300))
        // The host's own path is untouched.
        try send("from the host", from: host, to: "127.0.0.1", port: 7101)
        XCTAssertEqual(receive(on: loopback)?.payload, "from the host")
    }

    /// Both with and without br_netfilter handing bridged frames to the ip hooks, when the
    /// kernel has it (its switch is per network namespace).
    private func bridgeNetfilterModes() throws -> [Bool] {
        let present = try NetworkNamespace.run(in: host) { (try? Sysctl.read("net.bridge.bridge-nf-call-iptables")) != nil }
        return present ? [false, true] : [false]
    }

    private func setBridgeNetfilter(_ on: Bool) throws {
        try NetworkNamespace.run(in: host) {
            if (try? Sysctl.read("net.bridge.bridge-nf-call-iptables")) != nil {
                try Sysctl.write("net.bridge.bridge-nf-call-iptables", on ? "1" : "0")
            }
        }
    }

    func testHostForwardRuleBlocksPublishedPort() throws {
        try firewall.apply(networks: [web], forwards: [published])
        switch backend {
        case .nftables:
            // The rule the Firewall doc comment tells operators to add, in a table of their own.
            _ = try NFTables.run("""
                table inet filter {
                    chain forward {
                        type filter hook forward priority filter; policy accept;
                        meta l4proto udp ct original proto-dst 8080 drop
                    }
                }
                """, in: host)
        case .iptables:
            // The rule the IPTables doc comment tells operators to add, above Berth's jump.
            _ = try IPTables.run("iptables", ["-I", "FORWARD", "1", "-p", "udp", "-m", "conntrack",
                                              "--ctorigdstport", "8080", "-j", "DROP"], namespace: host)
        }
        try send("blocked", from: c2, to: "172.18.0.1", port: 8080)
        XCTAssertNil(receive(timeout: 300))
        // Re-applying Berth's tables does not undo the host's rule.
        try firewall.apply(networks: [web], forwards: [published])
        try send("still blocked", from: c2, to: "172.18.0.1", port: 8080)
        XCTAssertNil(receive(timeout: 300))
    }

    // MARK: sockets

    private func send(_ text: String, from namespace: String, to address: String, port: UInt16) throws {
        try NetworkNamespace.run(in: namespace) {
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw POSIXError(errno) }
            defer { close(fd) }
            var target = sockaddr_in()
            target.sin_family = sa_family_t(AF_INET)
            target.sin_port = port.bigEndian
            inet_pton(AF_INET, address, &target.sin_addr)
            let bytes = Array(text.utf8)
            let sent = withUnsafePointer(to: &target) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard sent == bytes.count else { throw POSIXError(errno) }
        }
    }

    /// One UDP datagram (checksum 0) in an Ethernet frame from c2's eth0 to the bridge's MAC,
    /// written to an AF_PACKET socket: any addresses a container with CAP_NET_RAW chooses.
    private func sendFrame(_ text: String, source: String, destination: String, port: UInt16) throws {
        let bridge = try XCTUnwrap(try Netlink(namespace: host).link(named: "berth0"))
        let device = try XCTUnwrap(try Netlink(namespace: c2).link(named: "eth0"))
        let payload = Array(text.utf8)
        let udpLength = 8 + payload.count, ipLength = 20 + udpLength
        var ip: [UInt8] = [0x45, 0, UInt8(ipLength >> 8), UInt8(ipLength & 0xff), 0, 0, 0, 0, 64, UInt8(IPPROTO_UDP), 0, 0]
        ip += try addressBytes(source) + addressBytes(destination)
        var sum = stride(from: 0, to: ip.count, by: 2).reduce(UInt32(0)) { $0 + (UInt32(ip[$1]) << 8 | UInt32(ip[$1 + 1])) }
        while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
        ip[10] = UInt8(~sum >> 8 & 0xff)
        ip[11] = UInt8(~sum & 0xff)
        let udp: [UInt8] = [0x9c, 0x40, UInt8(port >> 8), UInt8(port & 0xff), UInt8(udpLength >> 8), UInt8(udpLength & 0xff), 0, 0]
        let frame = try macBytes(bridge.mac) + macBytes(device.mac) + [0x08, 0x00] + ip + udp + payload
        let index = device.index
        try NetworkNamespace.run(in: c2) {
            let fd = socket(AF_PACKET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw POSIXError(errno) }
            defer { close(fd) }
            // struct sockaddr_ll, which the Glibc module does not export: family, protocol
            // (ETH_P_IP, big-endian), interface index; the rest may stay zero.
            var link = [UInt8](repeating: 0, count: 20)
            withUnsafeBytes(of: UInt16(AF_PACKET)) { link.replaceSubrange(0..<2, with: $0) }
            link[2] = 0x08
            withUnsafeBytes(of: index) { link.replaceSubrange(4..<8, with: $0) }
            let sent = link.withUnsafeBytes { address in
                sendto(fd, frame, frame.count, 0, address.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(link.count))
            }
            guard sent == frame.count else { throw POSIXError(errno) }
        }
    }

    private func addressBytes(_ text: String) throws -> [UInt8] {
        let address = try XCTUnwrap(Ruleset.parseIPv4(text))
        return [UInt8(address >> 24), UInt8(address >> 16 & 0xff), UInt8(address >> 8 & 0xff), UInt8(address & 0xff)]
    }

    private func macBytes(_ text: String) throws -> [UInt8] {
        let bytes = text.split(separator: ":").compactMap { UInt8($0, radix: 16) }
        XCTAssertEqual(bytes.count, 6, text)
        return bytes
    }

    /// The next datagram on `socket` (the receiver in c1 by default) and its source address, or
    /// nil after `timeout` ms.
    private func receive(on socket: Int32? = nil, timeout: Int32 = 3000) -> (payload: String, source: String)? {
        let receiver = socket ?? receiver
        var poller = pollfd(fd: receiver, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, timeout) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 2048)
        var from = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let count = withUnsafeMutablePointer(to: &from) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                recvfrom(receiver, &buffer, buffer.count, 0, $0, &length)
            }
        }
        guard count >= 0 else { return nil }
        let address = UInt32(bigEndian: from.sin_addr.s_addr)
        let source = "\(address >> 24).\((address >> 16) & 0xff).\((address >> 8) & 0xff).\(address & 0xff)"
        return (String(decoding: buffer[..<count], as: UTF8.self), source)
    }
}

/// The same traffic through Berth's iptables chains instead of its nftables tables.
final class IPTablesPublishedPortTrafficTests: PublishedPortTrafficTests {
    override var backend: FirewallBackend { .iptables }

    override func setUpWithError() throws {
        try XCTSkipIf(IPTables.locate("iptables-restore") == nil, "iptables is not installed")
        try super.setUpWithError()
    }

    // Linux test discovery lists only methods a class declares itself.
    override func testPublishedPortReachesContainerFromHostLoopbackAndBridgeAddress() throws { try super.testPublishedPortReachesContainerFromHostLoopbackAndBridgeAddress() }
    override func testAddressBoundForwardAnswersOnlyOnThatAddress() throws { try super.testAddressBoundForwardAnswersOnlyOnThatAddress() }
    override func testRemovedForwardNoLongerDelivers() throws { try super.testRemovedForwardNoLongerDelivers() }
    override func testHairpinFromContainerOnSameBridge() throws { try super.testHairpinFromContainerOnSameBridge() }
    override func testIccOffDropsContainerToContainerTrafficButNotHostTraffic() throws { try super.testIccOffDropsContainerToContainerTrafficButNotHostTraffic() }
    override func testHostForwardRuleBlocksPublishedPort() throws { try super.testHostForwardRuleBlocksPublishedPort() }
    override func testCraftedFramesWithLoopbackAddressesFromTheBridgeAreDropped() throws { try super.testCraftedFramesWithLoopbackAddressesFromTheBridgeAreDropped() }
}

private struct POSIXError: Error, CustomStringConvertible {
    let code: Int32
    init(_ code: Int32) { self.code = code }
    var description: String { String(cString: strerror(code)) }
}
