import Glibc

/// Renders Berth's nftables scripts. Pure text: nothing here talks to the kernel.
///
/// The shape of `table ip <table>`:
/// - map `published_addr_ports` (host address . proto . port → container address . port) and
///   map `published_ports` (proto . port → container address . port, for every local address);
///   chain `published` DNATs through them, jumped to for `fib daddr type local` from the nat
///   prerouting chain (outside and containers) and the nat output chain (the host itself).
/// - chain `loopback` (raw prerouting) drops packets with a 127.0.0.0/8 address that did not
///   arrive on `lo`: route_localnet must not open the host's loopback to neighbours.
/// - chain `postrouting` masquerades: a subnet leaving through another interface; 127.0.0.0/8
///   leaving through a Berth bridge (published ports reached at localhost); DNATed traffic going
///   back out the bridge it came from (hairpin).
/// - chain `forward` drops what crosses an internal network's bridge, then accepts
///   established/related and DNATed traffic, then drops traffic between two Berth bridges.
/// - chain `forward` also drops, for a network with icc off, what the host would route from its
///   bridge back into it: hairpin traffic to a published port of a neighbour.
/// `table bridge <table>` exists only when a network has icc off: its forward chain drops IPv4
/// frames from or to that subnet forwarded between two bridge ports, which never reach the ip
/// family's hooks without br_netfilter. It matches the subnet, not `meta ibrname`: kernels built
/// without CONFIG_NFT_BRIDGE_META reject ibrname/obrname. With br_netfilter active, bridged
/// frames (and hairpin traffic, which br_netfilter bridges instead of routing) cross the ip
/// forward hook too, so both tables agree: icc off means no IPv4 between two containers of the
/// network, directly or through a published port; ARP still passes.
enum Ruleset {
    static let addressMap = "published_addr_ports"
    static let portMap = "published_ports"
    static let bridgeSet = "bridges"

    /// Families Berth owns a table in.
    static let families = ["ip", "ip6", "bridge"]

    static func script(table: String, networks: [BridgeNetwork], forwards: [PortForward]) -> String {
        var out = ""
        // `add` makes `delete` succeed whether or not the table existed; the whole script is one
        // transaction, so the old tables are never seen missing or doubled.
        for family in families {
            out += "add table \(family) \(table)\ndelete table \(family) \(table)\n"
        }
        out += ipTable(table: table, networks: networks, forwards: forwards)
        let dualStack = networks.filter { $0.subnet6 != nil }
        if !dualStack.isEmpty { out += ip6Table(table: table, networks: dualStack) }
        let isolated = networks.filter { !$0.interContainer }
        if !isolated.isEmpty {
            out += "table bridge \(table) {\n"
            out += "\tchain forward {\n"
            out += "\t\ttype filter hook forward priority filter; policy accept;\n"
            for network in isolated {
                let subnet = normalizedSubnet(network.subnet)
                out += "\t\tip saddr \(subnet) drop\n"
                out += "\t\tip daddr \(subnet) drop\n"
            }
            out += "\t}\n}\n"
        }
        return out
    }

    static func removal(table: String) -> String {
        families.map { "add table \($0) \(table)\ndelete table \($0) \(table)\n" }.joined()
    }

    private static func ipTable(table: String, networks: [BridgeNetwork], forwards: [PortForward]) -> String {
        var out = "table ip \(table) {\n"
        out += bridgeSetDefinition(networks)

        let byAddress = forwards.filter { $0.hostIP != nil }
        let anyAddress = forwards.filter { $0.hostIP == nil }
        out += map(name: addressMap, keyType: "ipv4_addr . inet_proto . inet_service", forwards: byAddress)
        out += map(name: portMap, keyType: "inet_proto . inet_service", forwards: anyAddress)

        // A specific address wins over the wildcard: its map is looked up first.
        out += "\tchain published {\n"
        out += "\t\tdnat to ip daddr . meta l4proto . th dport map @\(addressMap)\n"
        out += "\t\tdnat to meta l4proto . th dport map @\(portMap)\n"
        out += "\t}\n"

        out += loopbackChain

        out += "\tchain prerouting {\n"
        out += "\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
        out += "\t\tfib daddr type local jump published\n"
        out += "\t}\n"

        // `dstnat` names -100 only for prerouting; output takes the number.
        out += "\tchain output {\n"
        out += "\t\ttype nat hook output priority -100; policy accept;\n"
        out += "\t\tfib daddr type local jump published\n"
        out += "\t}\n"

        out += "\tchain postrouting {\n"
        out += "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
        if !networks.isEmpty {
            // The host reached a published port at 127.0.0.1 (routable through route_localnet):
            // the container must answer to the bridge address instead.
            out += "\t\tip saddr 127.0.0.0/8 oifname @\(bridgeSet) masquerade\n"
        }
        for network in networks {
            let bridge = quoted(network.bridge), subnet = normalizedSubnet(network.subnet)
            // Hairpin: the reply must come back through the host to be un-DNATed.
            out += "\t\tip saddr \(subnet) oifname \(bridge) ct status dnat masquerade\n"
            if network.masquerade {
                out += "\t\tip saddr \(subnet) oifname != \(bridge) masquerade\n"
            }
        }
        out += "\t}\n"

        out += forwardChain(networks, acceptDNAT: true)
        out += "}\n"
        return out
    }

    /// route_localnet=1 on Berth's bridges (for ports published on 127.0.0.1) stops the kernel
    /// treating 127.0.0.0/8 there as martian, and published ports are DNATed before routing on
    /// every interface, so crafted frames would reach the host's loopback services
    /// (CVE-2020-8558), or pass a spoofed 127.0.0.1 source to them where accept_local is on.
    /// No legitimate packet carries a loopback address on a wire: a DNATed loopback connection
    /// leaves masqueraded to the bridge address, and conntrack (after this raw priority) restores
    /// 127.0.0.1 on its replies. Kubernetes added a similar drop for that CVE.
    private static let loopbackChain = """
        \tchain loopback {
        \t\ttype filter hook prerouting priority raw; policy accept;
        \t\tiif != "lo" ip daddr 127.0.0.0/8 drop
        \t\tiif != "lo" ip saddr 127.0.0.0/8 drop
        \t}

        """

    private static func bridgeSetDefinition(_ networks: [BridgeNetwork]) -> String {
        var out = "\tset \(bridgeSet) {\n\t\ttype ifname\n"
        if !networks.isEmpty {
            out += "\t\telements = { " + networks.map { quoted($0.bridge) }.joined(separator: ", ") + " }\n"
        }
        return out + "\t}\n"
    }

    /// The segmentation chain, the same in both families; only IPv4 has published ports, so
    /// only there is DNATed traffic accepted.
    private static func forwardChain(_ networks: [BridgeNetwork], acceptDNAT: Bool) -> String {
        var out = "\tchain forward {\n"
        out += "\t\ttype filter hook forward priority filter; policy accept;\n"
        // Internal first: not even a published port or an old connection crosses it.
        for network in networks where network.isInternal {
            let bridge = quoted(network.bridge)
            out += "\t\tiifname \(bridge) oifname != \(bridge) drop\n"
            out += "\t\toifname \(bridge) iifname != \(bridge) drop\n"
        }
        // icc off: also container to container through the host (hairpin to a published port),
        // and every bridged frame when br_netfilter hands them to this hook.
        for network in networks where !network.interContainer {
            let bridge = quoted(network.bridge)
            out += "\t\tiifname \(bridge) oifname \(bridge) drop\n"
        }
        out += "\t\tct state established,related accept\n"
        if acceptDNAT { out += "\t\tct status dnat accept\n" }
        for network in networks {
            let bridge = quoted(network.bridge)
            out += "\t\tiifname \(bridge) oifname @\(bridgeSet) oifname != \(bridge) drop\n"
        }
        return out + "\t}\n"
    }

    /// `table ip6 <table>` for dual-stack networks: the IPv4 table's outbound NAT and
    /// segmentation for their IPv6 prefixes. Published ports stay IPv4 (no DNAT here).
    private static func ip6Table(table: String, networks: [BridgeNetwork]) -> String {
        var out = "table ip6 \(table) {\n"
        out += bridgeSetDefinition(networks)
        out += "\tchain postrouting {\n"
        out += "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
        for network in networks where network.masquerade {
            out += "\t\tip6 saddr \(network.subnet6!) oifname != \(quoted(network.bridge)) masquerade\n"
        }
        out += "\t}\n"
        out += forwardChain(networks, acceptDNAT: false)
        out += "}\n"
        return out
    }

    private static func map(name: String, keyType: String, forwards: [PortForward]) -> String {
        var out = "\tmap \(name) {\n\t\ttype \(keyType) : ipv4_addr . inet_service\n"
        if !forwards.isEmpty {
            out += "\t\telements = {\n"
            out += forwards.map { "\t\t\t\(element($0, withValue: true))" }.joined(separator: ",\n")
            out += "\n\t\t}\n"
        }
        out += "\t}\n"
        return out
    }

    static func mapName(_ forward: PortForward) -> String {
        forward.hostIP == nil ? portMap : addressMap
    }

    /// `[host address . ]proto . port[ : container address . port]`
    static func element(_ forward: PortForward, withValue: Bool) -> String {
        var key = "\(forward.proto.rawValue) . \(forward.hostPort)"
        if let hostIP = forward.hostIP { key = "\(hostIP) . " + key }
        guard withValue else { return key }
        return key + " : \(forward.containerIP) . \(forward.containerPort)"
    }

    /// Fails as a whole if any key is present already (`create` refuses existing elements).
    static func addition(table: String, forwards: [PortForward]) -> String {
        forwards.map {
            "create element ip \(table) \(mapName($0)) { \(element($0, withValue: true)) }\n"
        }.joined()
    }

    /// `add` then `delete` in one transaction: removing an absent forward is a no-op, while a key
    /// that now leads to another container fails the whole transaction (its `add` clashes) so a
    /// stale caller cannot remove someone else's forward.
    static func removal(table: String, forwards: [PortForward]) -> String {
        forwards.map {
            "add element ip \(table) \(mapName($0)) { \(element($0, withValue: true)) }\n"
                + "delete element ip \(table) \(mapName($0)) { \(element($0, withValue: false)) }\n"
        }.joined()
    }

    static func quoted(_ name: String) -> String { "\"\(name)\"" }

    /// "172.18.0.5/16" → "172.18.0.0/16"; nft refuses host bits in a prefix. Invalid text is
    /// returned unchanged for libnftables to reject.
    static func normalizedSubnet(_ cidr: String) -> String {
        guard let (address, length) = parseCIDR(cidr) else { return cidr }
        let mask: UInt32 = length == 0 ? 0 : ~UInt32(0) << (32 - length)
        let network = address & mask
        return "\(network >> 24).\((network >> 16) & 0xff).\((network >> 8) & 0xff).\(network & 0xff)/\(length)"
    }

    // MARK: validation

    static func parseIPv4(_ text: String) -> UInt32? {
        var address = in_addr()
        guard inet_pton(AF_INET, text, &address) == 1 else { return nil }
        return UInt32(bigEndian: address.s_addr)
    }

    static func parseCIDR(_ text: String) -> (UInt32, Int)? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = parseIPv4(String(parts[0])),
              let length = Int(parts[1]), (0...32).contains(length) else { return nil }
        return (address, length)
    }

    static func validate(table: String) throws(FirewallError) {
        let allowed = table.utf8.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "_") }
        guard !table.isEmpty, table.utf8.count <= 64, allowed, !isDigit(table.utf8.first!) else {
            throw FirewallError(.invalidArgument, "invalid firewall table name \"\(table)\": use letters, digits and _")
        }
    }

    static func validate(networks: [BridgeNetwork]) throws(FirewallError) {
        var seen = Set<String>()
        for network in networks {
            let name = network.bridge
            let allowed = name.utf8.allSatisfy {
                isAlphanumeric($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".")
            }
            // IFNAMSIZ is 16 with the terminating NUL.
            guard !name.isEmpty, name.utf8.count < 16, allowed else {
                throw FirewallError(.invalidArgument, "invalid bridge name \"\(name)\"")
            }
            guard seen.insert(name).inserted else {
                throw FirewallError(.invalidArgument, "bridge \(name) is listed twice")
            }
            guard parseCIDR(network.subnet) != nil else {
                throw FirewallError(.invalidArgument, "invalid IPv4 subnet \"\(network.subnet)\" for bridge \(name)")
            }
            if let subnet6 = network.subnet6 {
                let parts = subnet6.split(separator: "/", omittingEmptySubsequences: false)
                var raw = in6_addr()
                guard parts.count == 2, inet_pton(AF_INET6, String(parts[0]), &raw) == 1,
                      let length = Int(parts[1]), (0...128).contains(length) else {
                    throw FirewallError(.invalidArgument, "invalid IPv6 subnet \"\(subnet6)\" for bridge \(name)")
                }
            }
        }
    }

    static func validate(forwards: [PortForward], uniqueKeys: Bool) throws(FirewallError) {
        var seen = Set<PortForward.Key>()
        for forward in forwards {
            if let hostIP = forward.hostIP, parseIPv4(hostIP) == nil {
                throw FirewallError(.invalidArgument, "invalid host IPv4 address \"\(hostIP)\"")
            }
            guard parseIPv4(forward.containerIP) != nil else {
                throw FirewallError(.invalidArgument, "invalid container IPv4 address \"\(forward.containerIP)\"")
            }
            guard forward.hostPort != 0, forward.containerPort != 0 else {
                throw FirewallError(.invalidArgument, "port 0 cannot be forwarded")
            }
            if uniqueKeys, !seen.insert(forward.key).inserted {
                throw FirewallError(.invalidArgument,
                                    "\(describe(forward.key)) is forwarded twice")
            }
        }
    }

    static func describe(_ key: PortForward.Key) -> String {
        "\(key.hostIP ?? "0.0.0.0"):\(key.hostPort)/\(key.proto.rawValue)"
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
    private static func isAlphanumeric(_ c: UInt8) -> Bool {
        isDigit(c) || (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
    }
}
