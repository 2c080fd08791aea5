// BerthFirewall owns Berth's nftables tables (NAT, published ports, network isolation) and
// nothing else: it never reads or changes another table. It knows nothing of containers or the
// engine; BerthNetwork decides which networks and forwards exist and hands them over.

/// Berth's nftables tables: `table ip <table>` (NAT and forward filtering) and, when a network
/// has inter-container communication off, `table bridge <table>`. Every change is one nft
/// transaction, so the kernel sees the old rules or the new ones, never a mix.
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

    public init(table: String = "berth", namespace: String? = nil) {
        self.table = table
        self.namespace = namespace
    }

    /// Replaces Berth's tables, in one transaction, with exactly these networks and forwards.
    /// Works whether or not the tables exist, so it also reconciles after a crash.
    public func apply(networks: [BridgeNetwork], forwards: [PortForward]) throws(FirewallError) {
        try validate(networks: networks, forwards: forwards)
        _ = try NFTables.run(Firewall.render(table: table, networks: networks, forwards: forwards), in: namespace)
    }

    /// Checks with libnftables and the kernel that `apply` would succeed, changing nothing.
    public func check(networks: [BridgeNetwork], forwards: [PortForward]) throws(FirewallError) {
        try validate(networks: networks, forwards: forwards)
        _ = try NFTables.run(Firewall.render(table: table, networks: networks, forwards: forwards),
                             in: namespace, dryRun: true)
    }

    /// Adds published-port forwards as map elements. Fails, adding none, if any (proto, hostIP,
    /// hostPort) key is present already or the tables do not exist (`apply` first).
    public func add(_ forwards: [PortForward]) throws(FirewallError) {
        try Ruleset.validate(table: table)
        try Ruleset.validate(forwards: forwards, uniqueKeys: true)
        guard !forwards.isEmpty else { return }
        _ = try NFTables.run(Ruleset.addition(table: table, forwards: forwards), in: namespace)
    }

    /// Removes published-port forwards. Absent forwards are skipped; a key that now leads to a
    /// different container fails the call, removing none.
    public func remove(_ forwards: [PortForward]) throws(FirewallError) {
        try Ruleset.validate(table: table)
        try Ruleset.validate(forwards: forwards, uniqueKeys: false)
        guard !forwards.isEmpty else { return }
        _ = try NFTables.run(Ruleset.removal(table: table, forwards: forwards), in: namespace)
    }

    /// Removes Berth's tables; nothing to do if they are absent.
    public func removeAll() throws(FirewallError) {
        try Ruleset.validate(table: table)
        _ = try NFTables.run(Ruleset.removal(table: table), in: namespace)
    }

    /// The nft script `apply` runs (for tests and `--debug`).
    public static func render(table: String, networks: [BridgeNetwork], forwards: [PortForward]) -> String {
        Ruleset.script(table: table, networks: networks, forwards: forwards)
    }

    private func validate(networks: [BridgeNetwork], forwards: [PortForward]) throws(FirewallError) {
        try Ruleset.validate(table: table)
        try Ruleset.validate(networks: networks)
        try Ruleset.validate(forwards: forwards, uniqueKeys: true)
    }
}
