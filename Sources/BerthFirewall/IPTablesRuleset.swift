/// Renders `iptables-restore --noflush` input for Berth's chains: the nftables ruleset's
/// semantics (see Ruleset) in iptables terms. Pure text: what is already in the kernel comes in
/// as a parsed `iptables-save` dump (`IPTablesDump`), so nothing here runs a command.
///
/// Berth owns user chains named from its table (upper-cased, so two daemons with different
/// tables never share one), e.g. for "berth":
/// - raw `BERTH-LOOPBACK`: drops packets with a 127.0.0.0/8 source or destination that did not
///   arrive on `lo` (see Ruleset's loopback chain for why); jumped to from PREROUTING.
/// - nat `BERTH-DNAT`: one DNAT rule per published port, address-bound ones first; jumped to
///   from PREROUTING and OUTPUT for `-m addrtype --dst-type LOCAL`.
/// - nat `BERTH-POSTROUTING`: 127.0.0.0/8 leaving through a Berth bridge, hairpin (DNATed
///   traffic going back out its bridge) and outbound masquerade; jumped to from POSTROUTING.
/// - filter `BERTH-FORWARD`: internal drops, icc drops, established and DNAT accepts, then
///   traffic between two Berth bridges goes to `BERTH-BRIDGES`, which drops it if it leaves
///   through a Berth bridge (iptables has no interface sets). Jumped to from FORWARD.
/// ip6tables gets the same POSTROUTING and FORWARD chains for dual-stack networks, without DNAT.
///
/// Each built-in chain gets exactly one jump, inserted at position 1 only when absent, so the
/// operator's rules keep their order around it. Declaring a chain (`:CHAIN - [0:0]`) creates or
/// flushes it, so a script refills Berth's chains completely; each `*table ... COMMIT` block is
/// one atomic replacement of that table.
enum IPTablesRuleset {
    enum Family: Sendable {
        case ipv4, ipv6
    }

    /// The longest suffix is "-POSTROUTING" (12) and iptables limits chain names to 28 bytes.
    static let maximumTableLength = 16

    struct Chains: Sendable {
        let loopback, dnat, postrouting, forward, bridges: String

        init(table: String) {
            let prefix = table.uppercased()
            loopback = prefix + "-LOOPBACK"
            dnat = prefix + "-DNAT"
            postrouting = prefix + "-POSTROUTING"
            forward = prefix + "-FORWARD"
            bridges = prefix + "-BRIDGES"
        }

        /// Berth's chains per iptables table for one family.
        func owned(_ family: Family) -> [(table: String, chains: [String])] {
            switch family {
            // raw first: each table commits on its own, and the loopback drop must not trail
            // the DNAT rules that make 127.0.0.1 reachable from outside.
            case .ipv4: [("raw", [loopback]), ("nat", [dnat, postrouting]), ("filter", [forward, bridges])]
            case .ipv6: [("nat", [postrouting]), ("filter", [forward, bridges])]
            }
        }

        /// The one rule each built-in chain gets: (table, built-in chain, rule spec).
        func jumps(_ family: Family) -> [Jump] {
            var all: [Jump] = []
            if family == .ipv4 {
                all.append(Jump(table: "raw", chain: "PREROUTING", spec: "-j \(loopback)"))
                all.append(Jump(table: "nat", chain: "PREROUTING", spec: "-m addrtype --dst-type LOCAL -j \(dnat)"))
                all.append(Jump(table: "nat", chain: "OUTPUT", spec: "-m addrtype --dst-type LOCAL -j \(dnat)"))
            }
            all.append(Jump(table: "nat", chain: "POSTROUTING", spec: "-j \(postrouting)"))
            all.append(Jump(table: "filter", chain: "FORWARD", spec: "-j \(forward)"))
            return all
        }
    }

    struct Jump: Sendable {
        let table, chain, spec: String
        /// The chain the jump leads to (its last word).
        var target: String { String(spec.split(separator: " ").last!) }
    }

    static func validate(table: String) throws(FirewallError) {
        try Ruleset.validate(table: table)
        guard table.utf8.count <= maximumTableLength else {
            throw FirewallError(.invalidArgument, "firewall table name \"\(table)\" is too long for iptables chain names "
                + "(at most \(maximumTableLength) characters)")
        }
    }

    /// Input for `iptables-restore --noflush` (ipv4) or `ip6tables-restore --noflush` (ipv6) that
    /// makes Berth's chains exactly these. `dump` is what the kernel has now: jumps already
    /// present are kept where they are.
    static func script(table: String, family: Family, networks: [BridgeNetwork], forwards: [PortForward],
                       dump: IPTablesDump) -> String {
        let chains = Chains(table: table)
        var raw: [String] = []
        var nat: [String] = []
        var filter: [String] = []
        if family == .ipv4 {
            // IPv6 needs no such chain: the kernel drops ::1 from any non-loopback device itself.
            raw.append("-A \(chains.loopback) -d 127.0.0.0/8 ! -i lo -j DROP")
            raw.append("-A \(chains.loopback) -s 127.0.0.0/8 ! -i lo -j DROP")
            nat += dnatRules(chain: chains.dnat, forwards: forwards)
            nat += networks.map { "-A \(chains.postrouting) -s 127.0.0.0/8 -o \($0.bridge) -j MASQUERADE" }
        }
        for network in networks {
            let bridge = network.bridge
            let subnet = family == .ipv4 ? Ruleset.normalizedSubnet(network.subnet) : network.subnet6!
            if family == .ipv4 {
                // Hairpin: the reply must come back through the host to be un-DNATed.
                nat.append("-A \(chains.postrouting) -s \(subnet) -o \(bridge) -m conntrack --ctstate DNAT -j MASQUERADE")
            }
            if network.masquerade {
                nat.append("-A \(chains.postrouting) -s \(subnet) ! -o \(bridge) -j MASQUERADE")
            }
        }
        // Internal first: not even a published port or an old connection crosses it.
        for network in networks where network.isInternal {
            filter.append("-A \(chains.forward) -i \(network.bridge) ! -o \(network.bridge) -j DROP")
            filter.append("-A \(chains.forward) ! -i \(network.bridge) -o \(network.bridge) -j DROP")
        }
        // icc off: hairpin through the host, and bridged frames when br_netfilter hands them to
        // iptables. Without br_netfilter bridged frames never reach iptables (Firewall refuses).
        for network in networks where !network.interContainer {
            filter.append("-A \(chains.forward) -i \(network.bridge) -o \(network.bridge) -j DROP")
        }
        filter.append("-A \(chains.forward) -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
        if family == .ipv4 {
            filter.append("-A \(chains.forward) -m conntrack --ctstate DNAT -j ACCEPT")
        }
        filter += networks.map { "-A \(chains.forward) -i \($0.bridge) ! -o \($0.bridge) -j \(chains.bridges)" }
        filter += networks.map { "-A \(chains.bridges) -o \($0.bridge) -j DROP" }

        let rules = ["raw": raw, "nat": nat, "filter": filter]
        var out = ""
        for (name, owned) in chains.owned(family) {
            out += "*\(name)\n"
            out += owned.map { ":\($0) - [0:0]\n" }.joined()
            for jump in chains.jumps(family) where jump.table == name && !dump.hasJump(jump) {
                out += "-I \(jump.chain) 1 \(jump.spec)\n"
            }
            out += rules[name, default: []].map { $0 + "\n" }.joined()
            out += "COMMIT\n"
        }
        return out
    }

    /// Deletes every rule outside Berth's chains that jumps to one of them, then the chains.
    /// nil when `dump` holds none of them: nothing to run.
    static func removal(table: String, family: Family, dump: IPTablesDump) -> String? {
        let chains = Chains(table: table)
        var out = ""
        for (name, owned) in chains.owned(family) {
            let present = owned.filter { dump.chains(of: name).contains($0) }
            let references = dump.rules(of: name).filter { rule in
                !owned.contains(rule.chain) && owned.contains(rule.target ?? "")
            }
            guard !present.isEmpty || !references.isEmpty else { continue }
            out += "*\(name)\n"
            // Declaring flushes, so the chains no longer reference each other when deleted.
            out += present.map { ":\($0) - [0:0]\n" }.joined()
            out += references.map { "-D \($0.chain) \($0.spec)\n" }.joined()
            out += present.map { "-X \($0)\n" }.joined()
            out += "COMMIT\n"
        }
        return out.isEmpty ? nil : out
    }

    /// Refills the DNAT chain with exactly `forwards`; the jumps to it stay.
    static func dnatScript(table: String, forwards: [PortForward]) -> String {
        let chain = Chains(table: table).dnat
        return "*nat\n:\(chain) - [0:0]\n" + dnatRules(chain: chain, forwards: forwards).map { $0 + "\n" }.joined()
            + "COMMIT\n"
    }

    /// One rule per forward, in the form `iptables-save` prints it; a specific address wins over
    /// the wildcard because its rule comes first.
    static func dnatRules(chain: String, forwards: [PortForward]) -> [String] {
        let ordered = forwards.filter { $0.hostIP != nil } + forwards.filter { $0.hostIP == nil }
        return ordered.map { forward in
            var rule = "-A \(chain)"
            if let hostIP = forward.hostIP { rule += " -d \(hostIP)/32" }
            let proto = forward.proto.rawValue
            rule += " -p \(proto) -m \(proto) --dport \(forward.hostPort)"
            return rule + " -j DNAT --to-destination \(forward.containerIP):\(forward.containerPort)"
        }
    }

    /// The forward a rule of the DNAT chain stands for; nil for a rule Berth did not write.
    static func forward(fromDNATRule spec: String) -> PortForward? {
        var words = spec.split(separator: " ").map(String.init)[...]
        var proto: PortProtocol?, hostIP: String?, hostPort: UInt16?, destination: String?
        var isDNAT = false
        while let word = words.popFirst() {
            guard let value = words.popFirst() else { return nil }
            switch word {
            case "-d":
                guard value.hasSuffix("/32") else { return nil }
                hostIP = String(value.dropLast(3))
            case "-p": proto = PortProtocol(rawValue: value)
            case "-m": guard value == "tcp" || value == "udp" else { return nil }
            case "--dport": hostPort = UInt16(value)
            case "-j": isDNAT = value == "DNAT"
            case "--to-destination": destination = value
            default: return nil
            }
        }
        guard isDNAT, let proto, let hostPort, let destination else { return nil }
        let parts = destination.split(separator: ":")
        guard parts.count == 2, let containerPort = UInt16(parts[1]) else { return nil }
        return PortForward(proto: proto, hostIP: hostIP, hostPort: hostPort, containerIP: String(parts[0]),
                           containerPort: containerPort)
    }
}

/// What `iptables-save` printed: per table, its chains and its rules in order.
struct IPTablesDump: Sendable {
    struct Rule: Sendable, Equatable {
        /// The chain the rule is in.
        let chain: String
        /// Everything after `-A CHAIN`, as iptables-save prints it (and iptables-restore reads it).
        let spec: String
        /// The chain or target after `-j`, if any.
        var target: String? {
            let words = spec.split(separator: " ")
            guard let jump = words.lastIndex(of: "-j"), jump + 1 < words.count else { return nil }
            return String(words[jump + 1])
        }
    }

    private var chainsByTable: [String: [String]] = [:]
    private var rulesByTable: [String: [Rule]] = [:]

    init(parsing text: String) {
        var table = ""
        for line in text.split(separator: "\n") {
            if line.hasPrefix("*") {
                table = String(line.dropFirst())
            } else if line.hasPrefix(":") {
                let name = line.dropFirst().split(separator: " ").first.map(String.init) ?? ""
                chainsByTable[table, default: []].append(name)
            } else if line.hasPrefix("-A ") {
                let words = line.split(separator: " ", maxSplits: 2)
                guard words.count == 3 else { continue }
                rulesByTable[table, default: []].append(Rule(chain: String(words[1]), spec: String(words[2])))
            }
        }
    }

    func chains(of table: String) -> [String] { chainsByTable[table] ?? [] }
    func rules(of table: String) -> [Rule] { rulesByTable[table] ?? [] }
    func rules(of table: String, chain: String) -> [Rule] { rules(of: table).filter { $0.chain == chain } }

    /// Whether the built-in chain already jumps to Berth's chain, with whatever matches.
    func hasJump(_ jump: IPTablesRuleset.Jump) -> Bool {
        rules(of: jump.table, chain: jump.chain).contains { $0.target == jump.target }
    }
}
