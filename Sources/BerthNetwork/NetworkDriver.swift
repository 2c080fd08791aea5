import BerthDNS
import BerthFirewall
import BerthNetlink
import Dispatch
import Glibc

/// The kernel side of Berth's networks, in the daemon's own namespace (the "host"): bridges,
/// the links into container namespaces, sysctls and the firewall table. Stateless: the engine
/// owns the model and tells the driver what to make of it.
public final class NetworkDriver: Sendable {
    let host: Netlink
    let firewall: Firewall
    /// Every firewall change, in order. Removing a map element waits for the kernel (an RCU
    /// grace period, ~10 ms here), so removals are queued and not waited for; anything after
    /// them (a new forward for the same port) still runs after them.
    let firewallQueue = DispatchQueue(label: "berth.firewall")

    /// `table` names Berth's nftables tables (one daemon per network namespace owns them), or
    /// its iptables chains. `backend`: `nftables`, `iptables`, or `auto` for nftables where the
    /// kernel has nf_tables and iptables elsewhere.
    public init(table: String = "berth", backend: String = "auto") throws(NetworkError) {
        host = try Self.netlink { () throws(NetlinkError) in try Netlink() }
        let chosen: FirewallBackend
        switch backend {
        case "auto": chosen = Firewall.detectBackend()
        case let name:
            guard let b = FirewallBackend(rawValue: name) else {
                throw NetworkError(.invalidArgument, "unknown firewall backend \(name): want nftables, iptables or auto")
            }
            chosen = b
        }
        firewall = Firewall(table: table, backend: chosen)
    }

    /// The firewall backend in use.
    public var firewallBackend: String { firewall.backend.rawValue }

    /// Turns on IPv4 forwarding, which bridged containers need to reach beyond their bridge.
    public func enableForwarding() throws(NetworkError) {
        try Self.netlink { () throws(NetlinkError) in try Sysctl.write("net.ipv4.ip_forward", "1") }
    }

    /// IPv6 forwarding, for dual-stack networks only: it also makes the kernel ignore router
    /// advertisements on interfaces with the default accept_ra.
    public func enableIPv6Forwarding() throws(NetworkError) {
        try Self.netlink { () throws(NetlinkError) in try Sysctl.write("net.ipv6.conf.all.forwarding", "1") }
    }

    /// IPv4 prefixes the host already routes (excluding default routes), so a new network's
    /// subnet can avoid them.
    public func routedSubnets() throws(NetworkError) -> [IPv4Subnet] {
        let routes = try Self.netlink { () throws(NetlinkError) in try host.routes() }
        return routes.compactMap { IPv4Subnet($0.destination) }.filter { $0.prefix > 0 }
    }

    /// Creates the bridge with the gateway address, or brings an existing one (after a daemon
    /// restart) back to that state.
    public func setUpBridge(_ net: NetworkDefinition) throws(NetworkError) {
        guard let subnet = net.subnet, let gateway = net.gateway else {
            throw NetworkError(.invalidArgument, "network \(net.name) has no IPv4 subnet")
        }
        let name = net.bridgeName
        try Self.netlink { () throws(NetlinkError) in
            if let existing = try host.link(named: name) {
                guard existing.kind == "bridge" else {
                    throw NetlinkError(code: .exists, message: "interface \(name) exists and is not a bridge")
                }
                if let mtu = net.mtu, existing.mtu != mtu { try host.setMTU(name, mtu) }
            } else {
                // A fixed MAC of its own, as Docker gives its bridges: containers' ARP entries
                // for the gateway then stay valid as ports join and leave.
                let mac = ([0x02] + (0..<5).map { _ in UInt8.random(in: 0...255) }).map { b in
                    let hex = String(b, radix: 16)
                    return hex.count == 1 ? "0" + hex : hex
                }
                try host.addBridge(name: name, mac: mac.joined(separator: ":"), mtu: net.mtu)
            }
            let present = try host.addresses(name)
            var cidrs = ["\(gateway)/\(subnet.prefix)"]
            if let subnet6 = net.subnet6, let gateway6 = net.gateway6 { cidrs.append("\(gateway6)/\(subnet6.prefix)") }
            for cidr in cidrs where !present.contains(cidr) { try host.addAddress(name, cidr: cidr) }
            try host.setUp(name)
            // Connections to a published port on 127.0.0.1 are DNATed onto the bridge with
            // their loopback source; the kernel drops those unless the bridge accepts them.
            // That also lets frames addressed to 127.0.0.0/8 in from the bridge (CVE-2020-8558):
            // the firewall's loopback chain drops every such packet not arriving on lo.
            try Sysctl.write("net.ipv4.conf.\(name).route_localnet", "1")
        }
    }

    public func removeBridge(_ net: NetworkDefinition) throws(NetworkError) {
        try Self.netlink { () throws(NetlinkError) in _ = try host.deleteLink(name: net.bridgeName) }
    }

    /// Replaces the firewall table with these networks and forwards (daemon start, network
    /// create and remove).
    public func applyFirewall(networks: [NetworkDefinition], forwards: [Forward]) throws(NetworkError) {
        let ordered = networks.sorted { ($0.created, $0.name) < ($1.created, $1.name) }
        let bridges = ordered.compactMap { net -> BridgeNetwork? in
            guard net.driver == .bridge, let subnet = net.subnet else { return nil }
            return BridgeNetwork(bridge: net.bridgeName, subnet: subnet.canonical.description, isInternal: net.isInternal,
                                 interContainer: net.interContainer, masquerade: net.masquerade,
                                 subnet6: net.subnet6?.canonical.description)
        }
        let rules = forwards.map(\.rule)
        let result = firewallQueue.sync { Result { () throws(FirewallError) in try firewall.apply(networks: bridges, forwards: rules) } }
        try Self.firewall { () throws(FirewallError) in try result.get() }
    }

    public func addForwards(_ forwards: [Forward]) throws(NetworkError) {
        guard !forwards.isEmpty else { return }
        let rules = forwards.map(\.rule)
        let result = firewallQueue.sync { Result { () throws(FirewallError) in try firewall.add(rules) } }
        try Self.firewall { () throws(FirewallError) in try result.get() }
    }

    /// Queued: returns before the kernel has dropped the forwards.
    public func removeForwards(_ forwards: [Forward]) {
        guard !forwards.isEmpty else { return }
        let rules = forwards.map(\.rule)
        firewallQueue.async { [firewall] in try? firewall.remove(rules) }
    }

    /// Makes the network namespace a container will join, pinned at `path`, with loopback up.
    public func createSandbox(at path: String) throws(NetworkError) {
        NetworkNamespace.remove(at: path)
        try Self.netlink { () throws(NetlinkError) in try NetworkNamespace.create(at: path) }
    }

    /// Unpins the namespace. Once its processes are gone the kernel destroys it with its veth
    /// pairs and macvlans, in the background: much cheaper than deleting each veth (17-40 ms a
    /// pair here, as each deletion waits for the kernel to let go of the device).
    public func removeSandbox(at path: String) { NetworkNamespace.remove(at: path) }

    /// A UDP socket and a listening TCP socket on 127.0.0.11:53 inside the sandbox, for the
    /// embedded DNS server (they belong to the sandbox's namespace whichever thread uses them).
    public func dnsSockets(in path: String) throws(NetworkError) -> (udp: Int32, tcp: Int32) {
        try Self.netlink { () throws(NetlinkError) in
            let address = ResolvConf.embeddedServerAddress
            let udp = try NetworkNamespace.bindSocket(in: path, type: Int32(SOCK_DGRAM.rawValue), address: address, port: 53)
            do throws(NetlinkError) {
                return (udp, try NetworkNamespace.bindSocket(in: path, type: Int32(SOCK_STREAM.rawValue), address: address, port: 53))
            } catch {
                close(udp)
                throw error
            }
        }
    }

    /// What an endpoint becomes inside a container's namespace.
    public struct Attachment: Sendable {
        public var network: NetworkDefinition
        public var interface: String
        public var hostInterface: String
        public var address: IPv4Address
        public var address6: IPv6Address?
        public var defaultRoute: Bool
        public init(network: NetworkDefinition, interface: String, hostInterface: String, address: IPv4Address,
                    address6: IPv6Address? = nil, defaultRoute: Bool) {
            self.network = network; self.interface = interface; self.hostInterface = hostInterface
            self.address = address; self.address6 = address6; self.defaultRoute = defaultRoute
        }
    }

    /// Plugs a container's namespace (pinned at `namespace`) into a network: a veth pair whose
    /// host end joins the bridge, or a macvlan on the parent; then address, link up and route.
    public func attach(namespace: String, _ a: Attachment) throws(NetworkError) {
        let net = a.network
        guard let subnet = net.subnet else { throw NetworkError(.invalidArgument, "network \(net.name) has no IPv4 subnet") }
        try Self.netlink { () throws(NetlinkError) in
            switch net.driver {
            case .bridge:
                try host.addVeth(name: a.hostInterface, peer: a.interface, peerNamespace: namespace,
                                 peerMAC: a.address.containerMAC, mtu: net.mtu)
                do throws(NetlinkError) {
                    try host.setMaster(a.hostInterface, bridge: net.bridgeName)
                    // A container reaching its own published port through the host's address
                    // comes back through its own port (br_netfilter DNATs on the bridge).
                    try host.setHairpin(a.hostInterface, true)
                    try host.setUp(a.hostInterface)
                } catch {
                    _ = try? host.deleteLink(name: a.hostInterface)
                    throw error
                }
            case .macvlan:
                try host.addMacvlan(name: a.interface, parent: net.parent ?? "", namespace: namespace,
                                    mac: a.address.containerMAC, mtu: net.mtu)
            case .host, .null:
                return
            }
            let inside = try Netlink(namespace: namespace)
            try inside.addAddress(a.interface, cidr: "\(a.address)/\(subnet.prefix)")
            try inside.setUp(a.interface)
            if a.defaultRoute, !net.isInternal, let gateway = net.gateway {
                try inside.addRoute(destination: "0.0.0.0/0", gateway: gateway.description, device: a.interface)
            }
            if let address6 = a.address6, let subnet6 = net.subnet6 {
                try inside.addAddress(a.interface, cidr: "\(address6)/\(subnet6.prefix)")
                if a.defaultRoute, !net.isInternal, let gateway6 = net.gateway6 {
                    try inside.addRoute(destination: "::/0", gateway: gateway6.description, device: a.interface)
                }
            }
        }
    }

    /// A fresh name for the host's end of a veth pair. Not derived from the container: the pair
    /// of its last run may still be on its way out (see `removeSandbox`).
    public static func hostInterfaceName() -> String {
        var g = SystemRandomNumberGenerator()
        let hex = Array("0123456789abcdef")
        return "vb" + String((0..<13).map { _ in hex[Int(g.next() % 16)] })
    }

    /// Unplugs an endpoint from a running container (deleting one end of a veth pair deletes both).
    public func detach(namespace: String, interface: String, hostInterface: String) {
        if !hostInterface.isEmpty, (try? host.deleteLink(name: hostInterface)) == true { return }
        if let inside = try? Netlink(namespace: namespace) { _ = try? inside.deleteLink(name: interface) }
    }

    /// Deletes a host-side veth left by a container that is not running (after a crash).
    public func removeStaleLink(_ name: String) {
        _ = try? host.deleteLink(name: name)
    }

    static func netlink<T>(_ body: () throws(NetlinkError) -> T) throws(NetworkError) -> T {
        do { return try body() } catch {
            let code: NetworkError.Code = switch error.code {
            case .notFound: .notFound
            case .exists: .conflict
            case .invalidArgument: .invalidArgument
            case .system: .system
            }
            throw NetworkError(code, error.message)
        }
    }

    static func firewall<T>(_ body: () throws(FirewallError) -> T) throws(NetworkError) -> T {
        do { return try body() } catch { throw NetworkError(.system, "firewall: \(error.message)") }
    }
}

extension Forward {
    var rule: PortForward {
        PortForward(proto: port.proto == .tcp ? .tcp : .udp, hostIP: port.hostIP == "0.0.0.0" ? nil : port.hostIP,
                    hostPort: port.hostPort, containerIP: container.description, containerPort: port.containerPort)
    }
}
