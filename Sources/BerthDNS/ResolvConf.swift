// resolv.conf as glibc reads it (resolv.conf(5)) and as Docker writes it for containers.

public struct ResolvConf: Sendable, Equatable {
    public var nameservers: [String]
    public var search: [String]
    public var options: [String]

    /// The embedded server's address inside every container on a user-defined network.
    public static let embeddedServerAddress = "127.0.0.11"

    public init(nameservers: [String] = [], search: [String] = [], options: [String] = []) {
        self.nameservers = nameservers
        self.search = search
        self.options = options
    }

    /// Lines starting with '#' or ';' are comments (and so is the rest of a line after one).
    /// Like glibc, the last `search` or `domain` line wins, `options` lines accumulate (a later
    /// option with the same name replaces an earlier one) and nameservers that are not IP
    /// addresses are ignored.
    public init(parsing text: String) {
        self.init()
        for rawLine in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let line = rawLine.prefix { $0 != "#" && $0 != ";" }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let keyword = fields.first else { continue }
            let values = Array(fields.dropFirst())
            switch keyword {
            case "nameserver":
                if let address = values.first, Self.isIPAddress(address) { nameservers.append(address) }
            case "search":
                search = values
            case "domain":
                search = values.first.map { [$0] } ?? []
            case "options":
                for option in values { addOption(option) }
            default:
                continue
            }
        }
    }

    private mutating func addOption(_ option: String) {
        let key = option.split(separator: ":", maxSplits: 1).first.map(String.init) ?? option
        if let index = options.firstIndex(where: { ($0.split(separator: ":", maxSplits: 1).first.map(String.init) ?? $0) == key }) {
            options[index] = option
        } else {
            options.append(option)
        }
    }

    private static func isIPAddress(_ text: String) -> Bool {
        IPAddressText.ipv4Bytes(text) != nil || IPAddressText.ipv6Bytes(text) != nil
    }

    /// "nameserver x" lines, then "search ..." and "options ...", each omitted when empty.
    public func rendered() -> String {
        var out = ""
        for server in nameservers { out += "nameserver \(server)\n" }
        if !search.isEmpty { out += "search \(search.joined(separator: " "))\n" }
        if !options.isEmpty { out += "options \(options.joined(separator: " "))\n" }
        return out
    }

    /// Nameservers that are not loopback (127.0.0.0/8, ::1): what a container on the default bridge can use.
    public var nonLoopbackNameservers: [String] {
        nameservers.filter { !IPAddressText.isLoopback($0) }
    }

    /// Docker's file for a container using the embedded server: only 127.0.0.11 as nameserver,
    /// search kept, and `ndots:0` added unless an ndots option is already set.
    public func forEmbeddedServer() -> ResolvConf {
        var copy = self
        copy.nameservers = [Self.embeddedServerAddress]
        if !options.contains(where: { $0.hasPrefix("ndots:") }) { copy.options.append("ndots:0") }
        return copy
    }

    /// The nameservers as forwarding targets for the embedded server (port 53).
    public var upstreams: [DNSUpstream] { nameservers.map { DNSUpstream(address: $0) } }
}
