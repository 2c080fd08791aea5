/// A network as the daemon stores it (`<root>/networks/<id>.json`): what `network create` asked
/// for, with the subnet and gateway IPAM settled on. Endpoints are not stored here; they live
/// with their containers.
public struct NetworkDefinition: Codable, Sendable, Equatable {
    public enum Driver: String, Codable, Sendable { case bridge, host, null, macvlan }

    public var id: String
    public var name: String
    public var driver: Driver
    /// RFC 3339 with nanoseconds.
    public var created: String
    public var subnet: IPv4Subnet?
    public var gateway: IPv4Address?
    /// Where container addresses are taken from (`--ip-range`); the whole subnet when nil.
    public var ipRange: IPv4Subnet?
    /// A dual-stack network's IPv6 prefix and gateway (`--ipv6`); nil for IPv4 only.
    public var subnet6: IPv6Subnet?
    public var gateway6: IPv6Address?
    /// Whether the subnet was given by the user (shown in inspect's IPAM config as given).
    public var isInternal: Bool
    public var attachable: Bool
    public var enableIPv6: Bool
    /// Driver options (`-o`): Docker's `com.docker.network.*` keys, and `parent` for macvlan.
    public var options: [String: String]
    public var labels: [String: String]
    public var ipamOptions: [String: String]

    public init(id: String, name: String, driver: Driver, created: String, subnet: IPv4Subnet? = nil,
                gateway: IPv4Address? = nil, ipRange: IPv4Subnet? = nil, isInternal: Bool = false,
                attachable: Bool = false, enableIPv6: Bool = false, options: [String: String] = [:],
                labels: [String: String] = [:], ipamOptions: [String: String] = [:]) {
        self.id = id; self.name = name; self.driver = driver; self.created = created
        self.subnet = subnet; self.gateway = gateway; self.ipRange = ipRange; self.isInternal = isInternal
        self.attachable = attachable; self.enableIPv6 = enableIPv6; self.options = options
        self.labels = labels; self.ipamOptions = ipamOptions
    }

    public static let bridgeNameOption = "com.docker.network.bridge.name"
    public static let mtuOption = "com.docker.network.driver.mtu"
    public static let iccOption = "com.docker.network.bridge.enable_icc"
    public static let masqueradeOption = "com.docker.network.bridge.enable_ip_masquerade"
    public static let hostBindingOption = "com.docker.network.bridge.host_binding_ipv4"
    public static let defaultBridgeOption = "com.docker.network.bridge.default_bridge"

    /// The three networks every daemon has, by their Docker names.
    public static let builtinNames: Set<String> = ["bridge", "host", "none"]
    public var isBuiltin: Bool { Self.builtinNames.contains(name) }

    /// The Linux bridge: `-o com.docker.network.bridge.name`, else `br-` and the ID's first 12.
    public var bridgeName: String { options[Self.bridgeNameOption] ?? "br-" + id.prefix(12) }
    public var mtu: UInt32? { options[Self.mtuOption].flatMap { UInt32($0) }.flatMap { $0 == 0 ? nil : $0 } }
    public var interContainer: Bool { options[Self.iccOption].map(Self.truthy) ?? true }
    public var masquerade: Bool { !isInternal && (options[Self.masqueradeOption].map(Self.truthy) ?? true) }
    /// The host address `-p` binds to when none is given (`host_binding_ipv4`), nil for all.
    public var defaultHostIP: IPv4Address? {
        options[Self.hostBindingOption].flatMap { IPv4Address($0) }.flatMap { $0.isUnspecified ? nil : $0 }
    }
    public var parent: String? { options["parent"] }
    /// The user-defined networks have the embedded DNS server; the default bridge does not.
    public var hasEmbeddedDNS: Bool { name != "bridge" && (driver == .bridge || driver == .macvlan) }

    static func truthy(_ s: String) -> Bool { ["1", "true", "t", "yes", "on"].contains(s.lowercased()) }

    /// Checks what a user may ask for, before anything is created.
    public static func validate(options: [String: String], driver: Driver) throws(NetworkError) {
        if let mtu = options[mtuOption], UInt32(mtu) == nil || (UInt32(mtu).map { $0 != 0 && $0 < 68 } ?? false) {
            throw NetworkError(.invalidArgument, "invalid MTU \(mtu): it must be a number of at least 68")
        }
        for key in [iccOption, masqueradeOption] {
            if let v = options[key], !["1", "0", "true", "false", "t", "f", "yes", "no", "on", "off"].contains(v.lowercased()) {
                throw NetworkError(.invalidArgument, "invalid value \(v) for option \(key): expected true or false")
            }
        }
        if let name = options[bridgeNameOption] { try validateInterfaceName(name) }
        if let v = options[hostBindingOption], IPv4Address(v) == nil {
            throw NetworkError(.invalidArgument, "invalid host binding address \(v)")
        }
        if driver == .macvlan {
            guard let parent = options["parent"], !parent.isEmpty else {
                throw NetworkError(.invalidArgument, "the macvlan driver needs a parent interface: -o parent=IFACE")
            }
            try validateInterfaceName(parent)
            if let mode = options["macvlan_mode"], mode != "bridge" {
                throw NetworkError(.invalidArgument, "macvlan mode \(mode) is not supported (only bridge)")
            }
        }
    }

    public static func validateInterfaceName(_ name: String) throws(NetworkError) {
        guard !name.isEmpty, name.utf8.count <= 15, name != ".", name != "..",
              name.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: ":") }) else {
            throw NetworkError(.invalidArgument, "invalid interface name \(name): 1 to 15 printable characters without '/' or ':'")
        }
    }
}
