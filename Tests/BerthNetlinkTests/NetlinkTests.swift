import BerthNetlink
import BerthOS
import Foundation
import XCTest

final class NetlinkTests: NamespaceTestCase {
    func testVethPeerLandsInTheSecondNamespaceAsEth0WithTheRequestedMAC() throws {
        let ns1 = try makeNamespace("ns1"), ns2 = try makeNamespace("ns2")
        let pair = try BridgedPair(host: ns1, container: ns2)

        let bridge = try XCTUnwrap(pair.host.link(named: "br0"))
        XCTAssertEqual(bridge.kind, "bridge")
        XCTAssertEqual(bridge.mtu, 1400)
        XCTAssertTrue(bridge.isUp)
        let veth = try XCTUnwrap(pair.host.link(named: "veth0"))
        XCTAssertEqual(veth.kind, "veth")
        XCTAssertEqual(veth.masterIndex, bridge.index)
        XCTAssertEqual(veth.mtu, 1400)
        XCTAssertTrue(veth.isUp)
        XCTAssertNil(try pair.host.link(named: "eth0"), "the peer must not be created in ns1")

        let eth0 = try XCTUnwrap(pair.container.link(named: "eth0"))
        XCTAssertEqual(eth0.kind, "veth")
        XCTAssertEqual(eth0.mac, BridgedPair.mac)
        XCTAssertEqual(eth0.mtu, 1400)
        XCTAssertTrue(eth0.isUp)
        XCTAssertNil(eth0.masterIndex)
        XCTAssertEqual(Set(try pair.container.links().map(\.name)), ["lo", "eth0"])
        XCTAssertEqual(try pair.host.links().first { $0.name == "veth0" }, veth)

        // Cross-check with iproute2.
        let ipLink = try XCTUnwrap(ip(ns2, "link", "show", "eth0").first)
        XCTAssertEqual(ipLink["address"] as? String, BridgedPair.mac)
        XCTAssertEqual(ipLink["mtu"] as? Int, 1400)
        let ipVeth = try XCTUnwrap(ip(ns1, "link", "show", "veth0").first)
        XCTAssertEqual(ipVeth["master"] as? String, "br0")
    }

    func testAddressesAndDefaultRouteAreVisibleToNetlinkAndToIproute2() throws {
        let ns1 = try makeNamespace("ns1"), ns2 = try makeNamespace("ns2")
        let pair = try BridgedPair(host: ns1, container: ns2)
        try pair.container.addAddress("eth0", cidr: "fd00:18::2/64")

        XCTAssertEqual(try pair.host.addresses("br0").filter { !$0.hasPrefix("fe80:") }, ["172.18.0.1/16"])
        XCTAssertEqual(Set(try pair.container.addresses("eth0").filter { !$0.hasPrefix("fe80:") }),
                       ["172.18.0.2/16", "fd00:18::2/64"])
        let routes = try pair.container.routes()
        XCTAssertTrue(routes.contains(Route(destination: "0.0.0.0/0", gateway: "172.18.0.1", device: "eth0")), "\(routes)")
        XCTAssertTrue(routes.contains(Route(destination: "172.18.0.0/16", gateway: nil, device: "eth0")), "\(routes)")
        XCTAssertTrue(routes.contains { $0.destination == "fd00:18::/64" && $0.device == "eth0" }, "\(routes)")
        XCTAssertTrue(try pair.host.routes().contains(Route(destination: "172.18.0.0/16", gateway: nil, device: "br0")))

        let ipAddresses = try ip(ns2, "addr", "show", "dev", "eth0")
        let infos = try XCTUnwrap(ipAddresses.first?["addr_info"] as? [[String: Any]])
        let v4 = try XCTUnwrap(infos.first { $0["family"] as? String == "inet" })
        XCTAssertEqual(v4["local"] as? String, "172.18.0.2")
        XCTAssertEqual(v4["prefixlen"] as? Int, 16)
        XCTAssertEqual(v4["broadcast"] as? String, "172.18.255.255")
        XCTAssertTrue(infos.contains { $0["local"] as? String == "fd00:18::2" && $0["prefixlen"] as? Int == 64 })
        let ipRoutes = try ip(ns2, "route", "show")
        let defaultRoute = try XCTUnwrap(ipRoutes.first { $0["dst"] as? String == "default" }, "\(ipRoutes)")
        XCTAssertEqual(defaultRoute["gateway"] as? String, "172.18.0.1")
        XCTAssertEqual(defaultRoute["dev"] as? String, "eth0")
    }

    func testUDPDatagramCrossesTheBridgeAndVeth() throws {
        let ns1 = try makeNamespace("ns1"), ns2 = try makeNamespace("ns2")
        _ = try BridgedPair(host: ns1, container: ns2)
        let dgram = Int32(SOCK_DGRAM.rawValue)
        let receiver = try NetworkNamespace.bindSocket(in: ns2, type: dgram, address: "172.18.0.2", port: 4789)
        defer { close(receiver) }
        let sender = try NetworkNamespace.bindSocket(in: ns1, type: dgram, address: "172.18.0.1", port: 0)
        defer { close(sender) }

        var to = sockaddr_in()
        to.sin_family = sa_family_t(AF_INET)
        to.sin_port = UInt16(4789).bigEndian
        inet_pton(AF_INET, "172.18.0.2", &to.sin_addr)
        let payload = Array("berth over veth".utf8)
        let sent = withUnsafePointer(to: &to) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(sender, payload, payload.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        XCTAssertEqual(sent, payload.count, String(cString: strerror(errno)))

        var poll = pollfd(fd: receiver, events: Int16(POLLIN), revents: 0)
        XCTAssertEqual(Glibc.poll(&poll, 1, 3000), 1, "no datagram within 3 s")
        var buffer = [UInt8](repeating: 0, count: 64)
        var from = sockaddr_in()
        var fromLength = socklen_t(MemoryLayout<sockaddr_in>.size)
        let received = withUnsafeMutablePointer(to: &from) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                recvfrom(receiver, &buffer, buffer.count, Int32(MSG_DONTWAIT), $0, &fromLength)
            }
        }
        XCTAssertEqual(received, payload.count)
        XCTAssertEqual(Array(buffer.prefix(max(received, 0))), payload)
        var text = [CChar](repeating: 0, count: 16)
        inet_ntop(AF_INET, &from.sin_addr, &text, socklen_t(text.count))
        XCTAssertEqual(String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self), "172.18.0.1")
    }

    func testMacvlanIsPlacedInTheTargetNamespace() throws {
        let ns1 = try makeNamespace("ns1"), ns2 = try makeNamespace("ns2")
        let host = try Netlink(namespace: ns1)
        try host.addBridge(name: "br0")
        try host.addMacvlan(name: "mv0", parent: "br0", namespace: ns2, mac: "02:42:0a:00:00:05", mtu: 1300)
        XCTAssertNil(try host.link(named: "mv0"))
        let link = try XCTUnwrap(Netlink(namespace: ns2).link(named: "mv0"))
        XCTAssertEqual(link.kind, "macvlan")
        XCTAssertEqual(link.mac, "02:42:0a:00:00:05")
        XCTAssertEqual(link.mtu, 1300)
        let ipLink = try XCTUnwrap(ip(ns2, "-d", "link", "show", "mv0").first)
        let info = ipLink["linkinfo"] as? [String: Any]
        XCTAssertEqual((info?["info_data"] as? [String: Any])?["mode"] as? String, "bridge")
        assertNetlinkError(.notFound, try host.addMacvlan(name: "mv1", parent: "nope0", namespace: nil))
    }

    func testAddingAnExistingBridgeFailsWithExists() throws {
        let netlink = try Netlink(namespace: makeNamespace("ns1"))
        try netlink.addBridge(name: "br0")
        XCTAssertThrowsError(try netlink.addBridge(name: "br0")) { error in
            let error = error as? NetlinkError
            XCTAssertEqual(error?.code, .exists)
            XCTAssertTrue(error?.message.contains("br0") == true, error?.message ?? "")
        }
    }

    func testDeleteLinkReportsWhetherItExisted() throws {
        let netlink = try Netlink(namespace: makeNamespace("ns1"))
        XCTAssertFalse(try netlink.deleteLink(name: "nope0"))
        try netlink.addVeth(name: "va", peer: "vb", peerNamespace: nil)
        XCTAssertNotNil(try netlink.link(named: "vb"))
        XCTAssertTrue(try netlink.deleteLink(name: "va"))
        XCTAssertNil(try netlink.link(named: "vb"), "deleting one end removes the pair")
    }

    func testInvalidArgumentsAreReportedAsSuch() throws {
        let netlink = try Netlink(namespace: makeNamespace("ns1"))
        try netlink.addBridge(name: "br0")
        for bad in ["172.18.0.1", "300.1.1.1/16", "fd00::1/129", "172.18.0.1/33", "default", "abc/8", ""] {
            assertNetlinkError(.invalidArgument, try netlink.addAddress("br0", cidr: bad))
        }
        assertNetlinkError(.invalidArgument, try netlink.addRoute(destination: "10.0.0.0", gateway: nil, device: "br0"))
        assertNetlinkError(.invalidArgument, try netlink.addRoute(destination: "10.0.0.0/8", gateway: "x", device: nil))
        assertNetlinkError(.invalidArgument, try netlink.addRoute(destination: "10.0.0.0/8", gateway: nil, device: nil))
        assertNetlinkError(.invalidArgument, try netlink.addVeth(name: "va", peer: "vb", peerNamespace: nil, peerMAC: "zz"))
        assertNetlinkError(.invalidArgument, try netlink.addBridge(name: "a-name-longer-than-15"))
        assertNetlinkError(.invalidArgument, try netlink.addBridge(name: "bad/name"))
        assertNetlinkError(.invalidArgument, try netlink.setUp(""))
        XCTAssertEqual(try netlink.links().map(\.name).sorted(), ["br0", "lo"], "nothing half-created")
    }

    func testOperationsOnMissingLinksFailWithNotFound() throws {
        let netlink = try Netlink(namespace: makeNamespace("ns1"))
        try netlink.addBridge(name: "br0")
        assertNetlinkError(.notFound, try netlink.setUp("nope0"))
        assertNetlinkError(.notFound, try netlink.setMTU("nope0", 1400))
        assertNetlinkError(.notFound, try netlink.setMaster("nope0", bridge: "br0"))
        assertNetlinkError(.notFound, try netlink.setMaster("br0", bridge: "nope0"))
        assertNetlinkError(.notFound, try netlink.addAddress("nope0", cidr: "10.0.0.1/8"))
        assertNetlinkError(.notFound, try netlink.addresses("nope0"))
        assertNetlinkError(.notFound, try netlink.addVeth(name: "va", peer: "vb", peerNamespace: directory + "/nope"))
        XCTAssertNil(try netlink.link(named: "nope0"))
    }

    func testDuplicateAddressAndRouteFailWithExists() throws {
        let netlink = try Netlink(namespace: makeNamespace("ns1"))
        try netlink.addBridge(name: "br0")
        try netlink.setUp("br0")
        try netlink.addAddress("br0", cidr: "10.9.0.1/24")
        assertNetlinkError(.exists, try netlink.addAddress("br0", cidr: "10.9.0.1/24"))
        try netlink.addRoute(destination: "10.10.0.0/16", gateway: "10.9.0.254", device: nil)
        assertNetlinkError(.exists, try netlink.addRoute(destination: "10.10.0.0/16", gateway: "10.9.0.254", device: nil))
        XCTAssertTrue(try netlink.routes().contains(Route(destination: "10.10.0.0/16", gateway: "10.9.0.254", device: "br0")))
    }

    func testSetMTUChangesTheLink() throws {
        let netlink = try Netlink(namespace: makeNamespace("ns1"))
        try netlink.addBridge(name: "br0")
        try netlink.setMTU("br0", 1280)
        XCTAssertEqual(try netlink.link(named: "br0")?.mtu, 1280)
    }

    func testOneNetlinkIsSafeToShareAcrossThreads() throws {
        let netlink = try Netlink(namespace: makeNamespace("ns1"))
        DispatchQueue.concurrentPerform(iterations: 16) { i in
            do {
                try netlink.addBridge(name: "br\(i)")
                _ = try netlink.links()
            } catch {
                XCTFail("\(error)")
            }
        }
        XCTAssertEqual(try netlink.links().filter { $0.kind == "bridge" }.count, 16)
    }

    /// The container-start sequence: namespace, veth into it, MAC/MTU, master, up, address,
    /// default route. Printed, not asserted (the budget is < 5 ms).
    func testContainerNetworkSetupTiming() throws {
        let hostPath = try makeNamespace("host")
        let host = try Netlink(namespace: hostPath)
        try host.addBridge(name: "br0", mtu: 1500)
        try host.addAddress("br0", cidr: "172.18.0.1/16")
        try host.setUp("br0")

        var samples: [Double] = []
        var steps: [String: [Double]] = [:]
        for i in 0..<20 {
            let path = try makeNamespace("c\(i)")
            NetworkNamespace.remove(at: path)  // makeNamespace registered it for cleanup; time a fresh create
            var clock = monotonicSeconds()
            func lap(_ name: String) {
                let now = monotonicSeconds()
                steps[name, default: []].append((now - clock) * 1000)
                clock = now
            }
            let start = monotonicSeconds()
            try NetworkNamespace.create(at: path); lap("create namespace")
            try host.addVeth(name: "veth\(i)", peer: "eth0", peerNamespace: path,
                             peerMAC: String(format: "02:42:ac:12:00:%02x", i + 2), mtu: 1500); lap("veth pair")
            try host.setMaster("veth\(i)", bridge: "br0"); lap("set master")
            try host.setUp("veth\(i)"); lap("host end up")
            let container = try Netlink(namespace: path); lap("open socket in namespace")
            try container.addAddress("eth0", cidr: "172.18.0.\(i + 2)/16"); lap("address")
            try container.setUp("eth0"); lap("container end up")
            try container.addRoute(destination: "0.0.0.0/0", gateway: "172.18.0.1", device: "eth0"); lap("default route")
            samples.append((monotonicSeconds() - start) * 1000)
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        print("container network setup, each run (ms):", samples.map { String(format: "%.2f", $0) }.joined(separator: " "))
        print(String(format: "container network setup: median %.3f ms, min %.3f ms, max %.3f ms (20 runs)",
                     median(samples), samples.min()!, samples.max()!))
        for name in ["create namespace", "veth pair", "set master", "host end up", "open socket in namespace",
                     "address", "container end up", "default route"] {
            print(String(format: "  %@: median %.3f ms, max %.3f ms", name, median(steps[name]!), steps[name]!.max()!))
        }
    }
}
