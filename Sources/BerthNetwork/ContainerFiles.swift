/// The /etc/hosts and /etc/hostname a container sees (resolv.conf comes from BerthDNS's
/// ResolvConf), written by the daemon into the container's directory and bind-mounted.
public enum ContainerFiles {
    static let localEntries = """
        127.0.0.1\tlocalhost
        ::1\tlocalhost ip6-localhost ip6-loopback
        fe00::0\tip6-localnet
        ff00::0\tip6-mcastprefix
        ff02::1\tip6-allnodes
        ff02::2\tip6-allrouters

        """

    /// Docker's layout: the loopback entries, `--add-host` entries, then the container's own
    /// address with its hostname (and short name when the hostname has a domain).
    public static func hosts(extraHosts: [(name: String, address: String)], own: [(address: String, names: [String])]) -> String {
        var out = localEntries
        for h in extraHosts { out += "\(h.address)\t\(h.name)\n" }
        for o in own where !o.names.isEmpty { out += "\(o.address)\t\(o.names.joined(separator: " "))\n" }
        return out
    }

    /// `--add-host name:ip` (also `name=ip`); `host-gateway` stands for `gateway`.
    public static func parseExtraHost(_ spec: String, gateway: String?) throws(NetworkError) -> (name: String, address: String) {
        let sep = spec.firstIndex(where: { $0 == "=" }) ?? spec.firstIndex(where: { $0 == ":" })
        guard let sep else { throw NetworkError(.invalidArgument, "invalid argument \"\(spec)\" for \"--add-host\": expected host:ip") }
        let name = String(spec[..<sep])
        var address = String(spec[spec.index(after: sep)...])
        if address.hasPrefix("[") && address.hasSuffix("]") { address = String(address.dropFirst().dropLast()) }
        guard !name.isEmpty, !name.contains(where: { $0 == " " || $0 == "\t" }) else {
            throw NetworkError(.invalidArgument, "invalid argument \"\(spec)\" for \"--add-host\": bad host name")
        }
        if address == "host-gateway" {
            guard let gateway else { throw NetworkError(.invalidArgument, "unable to derive the IP value for host-gateway: the container has no gateway") }
            return (name, gateway)
        }
        guard IPv4Address(address) != nil || (address.contains(":") && address.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." })) else {
            throw NetworkError(.invalidArgument, "invalid IP address in add-host: \"\(address)\"")
        }
        return (name, address)
    }
}
