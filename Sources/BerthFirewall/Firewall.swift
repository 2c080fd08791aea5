// BerthFirewall owns Berth's nftables tables (NAT, published ports, network isolation), or on
// hosts without nf_tables Berth's iptables chains and the one jump to each, and nothing else.
// It knows nothing of containers or the engine; BerthNetwork decides which networks and
// forwards exist and hands them over.

/// Berth's nftables tables: `table ip <table>` (NAT, forward filtering, and the drop of
/// loopback-addressed packets from other interfaces that route_localnet would let in) and,
/// when a network has inter-container communication off, `table bridge <table>`. Every change
/// is one nft transaction, so the kernel sees the old rules or the new ones, never a mix.
///
/// Filtering a published port: Berth adds its own base chains and never touches the host's
/// tables, and in nftables every base chain registered on a hook sees the packet, a `drop` in
/// any of them being final. So the host's firewall keeps the last word: add a rule to a chain of
/// your own on the forward hook that matches the port as the client addressed it, before DNAT
/// rewrote it, with conntrack's original tuple:
///
///     table inet filter {
///         chain forward {
///             type filter hook forward priority filter; policy accept;
///             meta l4proto tcp ct original proto-dst 8080 ip saddr != 192.168.1.0/24 drop
///         }
///     }
///
/// `ct original proto-dst` is the published host port (8080) even though the packet itself now
/// carries the container's address and port (`tcp dport` would see the container port); nft
/// needs `meta l4proto` before it to know the port's type. Berth's own `accept` of DNATed traffic
/// cannot override that drop: an accept ends only the chain it is in. (Connections the host makes
/// to its own published ports, e.g. to 127.0.0.1, go through the output hook instead of forward;
/// filter those in an output chain.)
public struct Firewall: Sendable {
    public let table: String
    /// Path of a pinned network namespace to act in (tests); nil for the caller's own.
    public let namespace: String?
    /// nftables tables, or iptables chains named `<TABLE>-DNAT` etc. (see IPTablesRuleset).
    public let backend: FirewallBackend

    public init(table: String = "berth", namespace: String? = nil, backend: FirewallBackend = .nftables) {
        self.table = table
        self.namespace = namespace
        self.backend = backend
    }

    /// nftables when libnftables can talk to the kernel's nf_tables (in `namespace`, if given),
    /// else iptables.
    public static func detectBackend(namespace: String? = nil) -> FirewallBackend {
        (try? NFTables.run("list tables", in: namespace)) != nil ? .nftables : .iptables
    }

    /// Replaces Berth's tables (chains), in one transaction per table, with exactly these
    /// networks and forwards. Works whether or not they exist, so it also reconciles after a crash.
    public func apply(networks: [BridgeNetwork], forwards: [PortForward]) throws(FirewallError) {
        try validate(networks: networks, forwards: forwards)
        switch backend {
        case .nftables:
            _ = try NFTables.run(Firewall.render(table: table, networks: networks, forwards: forwards), in: namespace)
        case .iptables:
            try IPTables.apply(table: table, namespace: namespace, networks: networks, forwards: forwards)
        }
    }

    /// Checks with the kernel (libnftables, or `iptables-restore --test`) that `apply` would
    /// succeed, changing nothing.
    public func check(networks: [BridgeNetwork], forwards: [PortForward]) throws(FirewallError) {
        try validate(networks: networks, forwards: forwards)
        switch backend {
        case .nftables:
            _ = try NFTables.run(Firewall.render(table: table, networks: networks, forwards: forwards),
                                 in: namespace, dryRun: true)
        case .iptables:
            try IPTables.apply(table: table, namespace: namespace, networks: networks, forwards: forwards, dryRun: true)
        }
    }

    /// Adds published-port forwards (map elements, or DNAT rules). Fails, adding none, if any
    /// (proto, hostIP, hostPort) key is present already or Berth's tables do not exist (`apply` first).
    public func add(_ forwards: [PortForward]) throws(FirewallError) {
        try validateTable()
        try Ruleset.validate(forwards: forwards, uniqueKeys: true)
        guard !forwards.isEmpty else { return }
        switch backend {
        case .nftables: _ = try NFTables.run(Ruleset.addition(table: table, forwards: forwards), in: namespace)
        case .iptables: try IPTables.add(table: table, namespace: namespace, forwards)
        }
    }

    /// Removes published-port forwards. Absent forwards are skipped; a key that now leads to a
    /// different container fails the call, removing none.
    public func remove(_ forwards: [PortForward]) throws(FirewallError) {
        try validateTable()
        try Ruleset.validate(forwards: forwards, uniqueKeys: false)
        guard !forwards.isEmpty else { return }
        switch backend {
        case .nftables: _ = try NFTables.run(Ruleset.removal(table: table, forwards: forwards), in: namespace)
        case .iptables: try IPTables.remove(table: table, namespace: namespace, forwards)
        }
    }

    /// Removes Berth's tables (chains and the jumps to them); nothing to do if they are absent.
    public func removeAll() throws(FirewallError) {
        try validateTable()
        switch backend {
        case .nftables: _ = try NFTables.run(Ruleset.removal(table: table), in: namespace)
        case .iptables: try IPTables.removeAll(table: table, namespace: namespace)
        }
    }

    /// The script `apply` runs (for tests and `--debug`): the nft script, or for iptables the
    /// `iptables-restore` then `ip6tables-restore` input as for a host without Berth's chains.
    public static func render(table: String, networks: [BridgeNetwork], forwards: [PortForward],
                              backend: FirewallBackend = .nftables) -> String {
        switch backend {
        case .nftables:
            return Ruleset.script(table: table, networks: networks, forwards: forwards)
        case .iptables:
            let empty = IPTablesDump(parsing: "")
            var out = "# iptables-restore --noflush\n"
            out += IPTablesRuleset.script(table: table, family: .ipv4, networks: networks, forwards: forwards, dump: empty)
            let dualStack = networks.filter { $0.subnet6 != nil }
            if !dualStack.isEmpty {
                out += "# ip6tables-restore --noflush\n"
                out += IPTablesRuleset.script(table: table, family: .ipv6, networks: dualStack, forwards: [], dump: empty)
            }
            return out
        }
    }

    private func validateTable() throws(FirewallError) {
        switch backend {
        case .nftables: try Ruleset.validate(table: table)
        case .iptables: try IPTablesRuleset.validate(table: table)
        }
    }

    private func validate(networks: [BridgeNetwork], forwards: [PortForward]) throws(FirewallError) {
        try validateTable()
        try Ruleset.validate(networks: networks)
        try Ruleset.validate(forwards: forwards, uniqueKeys: true)
    }
}
