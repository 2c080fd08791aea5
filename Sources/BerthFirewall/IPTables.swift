import BerthNetlink
import BerthOS
import Glibc
import Synchronization

/// The iptables backend: Berth's chains (see IPTablesRuleset) changed through `iptables-save`
/// and `iptables-restore --noflush`, run as child processes (posix_spawn; `nsenter --net=PATH`
/// in front of them for a namespace, since a spawned process need not inherit a thread's
/// namespace). Whichever iptables the host's alternatives select (nft or legacy) is used.
///
/// Filtering a published port: Berth's FORWARD jump sits at the top of FORWARD and its chain
/// ACCEPTs DNATed traffic, which in iptables ends the whole FORWARD chain. Put the host's rule
/// above the jump (`iptables -I FORWARD 1 ...` after Berth started; Berth never moves an existing
/// jump), matching the port as the client addressed it:
///
///     iptables -I FORWARD 1 -p tcp -m conntrack --ctorigdstport 8080 ! -s 192.168.1.0/24 -j DROP
enum IPTables {
    /// Read-modify-write sequences (dump, check, restore) of this process run one at a time.
    private static let serial = Mutex(())

    static func apply(table: String, namespace: String?, networks: [BridgeNetwork], forwards: [PortForward],
                      dryRun: Bool = false) throws(FirewallError) {
        try requireBridgeNetfilter(networks: networks, namespace: namespace)
        try serial.withLock { _ throws(FirewallError) in
            let dump4 = try save(.ipv4, namespace: namespace)
            let script4 = IPTablesRuleset.script(table: table, family: .ipv4, networks: networks,
                                                 forwards: forwards, dump: dump4)
            let dualStack = networks.filter { $0.subnet6 != nil }
            // A host without IPv6 (or ip6tables) is fine as long as no network asks for it.
            let dump6 = dualStack.isEmpty ? (try? save(.ipv6, namespace: namespace)) : try save(.ipv6, namespace: namespace)
            let script6: String? = if let dump6 {
                dualStack.isEmpty
                    ? IPTablesRuleset.removal(table: table, family: .ipv6, dump: dump6)
                    : IPTablesRuleset.script(table: table, family: .ipv6, networks: dualStack, forwards: [], dump: dump6)
            } else { nil }
            try restore(script4, .ipv4, namespace: namespace, test: dryRun)
            if let script6 { try restore(script6, .ipv6, namespace: namespace, test: dryRun) }
        }
    }

    static func add(table: String, namespace: String?, _ forwards: [PortForward]) throws(FirewallError) {
        try serial.withLock { _ throws(FirewallError) in
            let present = try publishedForwards(table: table, namespace: namespace)
            let keys = Set(present.map(\.key))
            if let clash = forwards.first(where: { keys.contains($0.key) }) {
                throw FirewallError(.rejected, "\(Ruleset.describe(clash.key)) is published already")
            }
            try restore(IPTablesRuleset.dnatScript(table: table, forwards: present + forwards), .ipv4, namespace: namespace)
        }
    }

    static func remove(table: String, namespace: String?, _ forwards: [PortForward]) throws(FirewallError) {
        try serial.withLock { _ throws(FirewallError) in
            var present = try publishedForwards(table: table, namespace: namespace)
            var changed = false
            for forward in forwards {
                guard let index = present.firstIndex(where: { $0.key == forward.key }) else { continue }
                // A stale caller must not remove a forward that now leads to another container.
                guard present[index] == forward else {
                    throw FirewallError(.rejected, "\(Ruleset.describe(forward.key)) now leads to "
                        + "\(present[index].containerIP):\(present[index].containerPort), not "
                        + "\(forward.containerIP):\(forward.containerPort)")
                }
                present.remove(at: index)
                changed = true
            }
            if changed {
                try restore(IPTablesRuleset.dnatScript(table: table, forwards: present), .ipv4, namespace: namespace)
            }
        }
    }

    static func removeAll(table: String, namespace: String?) throws(FirewallError) {
        try serial.withLock { _ throws(FirewallError) in
            for family in [IPTablesRuleset.Family.ipv4, .ipv6] {
                // No ip6tables (or no IPv6) means no IPv6 chains to remove.
                guard let dump = family == .ipv4 ? try save(family, namespace: namespace)
                                                 : try? save(family, namespace: namespace),
                      let script = IPTablesRuleset.removal(table: table, family: family, dump: dump) else { continue }
                try restore(script, family, namespace: namespace)
            }
        }
    }

    /// The forwards in Berth's DNAT chain, in order; fails if the chain is absent (`apply`
    /// first) or holds a rule Berth did not write.
    private static func publishedForwards(table: String, namespace: String?) throws(FirewallError) -> [PortForward] {
        let chain = IPTablesRuleset.Chains(table: table).dnat
        let dump = try save(.ipv4, namespace: namespace, table: "nat")
        guard dump.chains(of: "nat").contains(chain) else {
            throw FirewallError(.rejected, "iptables chain \(chain) does not exist: apply the firewall first")
        }
        var forwards: [PortForward] = []
        for rule in dump.rules(of: "nat", chain: chain) {
            guard let forward = IPTablesRuleset.forward(fromDNATRule: rule.spec) else {
                throw FirewallError(.rejected, "unexpected rule in iptables chain \(chain): \(rule.spec)")
            }
            forwards.append(forward)
        }
        return forwards
    }

    /// Without br_netfilter, frames between two ports of a bridge never reach iptables, so
    /// icc=false could not be enforced: refuse rather than leave containers silently connected.
    private static func requireBridgeNetfilter(networks: [BridgeNetwork], namespace: String?) throws(FirewallError) {
        let isolated = networks.filter { !$0.interContainer }
        guard !isolated.isEmpty else { return }
        let keys = ["net.bridge.bridge-nf-call-iptables"]
            + (isolated.contains { $0.subnet6 != nil } ? ["net.bridge.bridge-nf-call-ip6tables"] : [])
        let read: @Sendable () -> [String?] = { keys.map { try? Sysctl.read($0) } }
        let values: [String?]
        if let namespace {
            do { values = try NetworkNamespace.run(in: namespace, read) } catch {
                throw FirewallError(.namespace, "\(error)")
            }
        } else {
            values = read()
        }
        for (key, value) in zip(keys, values) where value != "1" {
            throw FirewallError(.unsupported, "bridge \(isolated[0].bridge) has inter-container communication off, "
                + "which iptables can enforce only on bridged traffic that br_netfilter hands to it: "
                + "load br_netfilter (modprobe br_netfilter) and set \(key)=1, or use the nftables backend")
        }
    }

    // MARK: commands

    private static func save(_ family: IPTablesRuleset.Family, namespace: String?,
                             table: String? = nil) throws(FirewallError) -> IPTablesDump {
        let tool = family == .ipv4 ? "iptables-save" : "ip6tables-save"
        let arguments = table.map { ["-t", $0] } ?? []
        return IPTablesDump(parsing: try run(tool, arguments, namespace: namespace))
    }

    /// One `iptables-restore --noflush` transaction (one atomic commit per `*table` block).
    /// `test` parses and builds the tables without committing them.
    private static func restore(_ script: String, _ family: IPTablesRuleset.Family, namespace: String?,
                                test: Bool = false) throws(FirewallError) {
        let tool = family == .ipv4 ? "iptables-restore" : "ip6tables-restore"
        _ = try run(tool, ["--noflush", "--wait"] + (test ? ["--test"] : []), stdin: script, namespace: namespace)
    }

    private static let searchPath = ["/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin"]

    static func locate(_ tool: String) -> String? {
        searchPath.map { $0 + "/" + tool }.first { access($0, X_OK) == 0 }
    }

    /// Runs `tool` (inside the namespace through nsenter) and returns its standard output;
    /// a non-zero exit throws with what it wrote to standard error.
    static func run(_ tool: String, _ arguments: [String], stdin: String = "",
                    namespace: String?) throws(FirewallError) -> String {
        guard let path = locate(tool) else {
            throw FirewallError(.unsupported, "\(tool) is not installed (looked in \(searchPath.joined(separator: ", ")))")
        }
        var argv = [path] + arguments
        if let namespace {
            guard let nsenter = locate("nsenter") else {
                throw FirewallError(.unsupported, "nsenter is not installed: cannot run \(tool) in \(namespace)")
            }
            argv = [nsenter, "--net=\(namespace)"] + argv
        }
        let (status, output, errors) = try spawn(argv, stdin: Array(stdin.utf8))
        guard status == 0 else {
            var message = errors.isEmpty ? output : errors
            while message.last == "\n" { message.removeLast() }
            throw FirewallError(.rejected, "\(tool) failed (\(status < 0 ? "signal \(-status)" : "exit status \(status)"))"
                + (message.isEmpty ? "" : ": " + message))
        }
        return output
    }

    /// posix_spawn with stdin, stdout and stderr on unlinked temporary files: the child never
    /// blocks on a pipe we are not reading. Returns the exit status (minus the signal number
    /// when killed), standard output and standard error.
    private static func spawn(_ argv: [String], stdin: [UInt8]) throws(FirewallError) -> (Int32, String, String) {
        let input = try temporaryFile(), output = try temporaryFile(), errors = try temporaryFile()
        defer { close(input); close(output); close(errors) }
        var written = 0
        while written < stdin.count {
            let n = stdin.withUnsafeBytes { write(input, $0.baseAddress! + written, $0.count - written) }
            guard n > 0 else { throw FirewallError(.rejected, "cannot write \(argv[0])'s input: \(describeErrno())") }
            written += n
        }
        lseek(input, 0, SEEK_SET)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input, 0)
        posix_spawn_file_actions_adddup2(&actions, output, 1)
        posix_spawn_file_actions_adddup2(&actions, errors, 2)
        let cargv = CStringArray(argv)
        let envp = CStringArray(["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"])
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, nil, cargv.pointer, envp.pointer)
        guard rc == 0 else {
            throw FirewallError(.rejected, "cannot run \(argv[0]): \(String(cString: strerror(rc)))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw FirewallError(.rejected, "waitpid \(argv[0]): \(describeErrno())") }
        }
        let exit = status & 0x7f == 0 ? (status >> 8) & 0xff : -(status & 0x7f)
        return (exit, readAll(output), readAll(errors))
    }

    private static func temporaryFile() throws(FirewallError) -> Int32 {
        var template = Array("/tmp/berth-iptables-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw FirewallError(.rejected, "cannot create a temporary file: \(describeErrno())") }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return fd
    }

    private static func readAll(_ fd: Int32) -> String {
        lseek(fd, 0, SEEK_SET)
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += chunk[..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func describeErrno() -> String { String(cString: strerror(errno)) }
}
