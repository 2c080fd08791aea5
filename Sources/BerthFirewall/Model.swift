/// What Berth's firewall knows of the world: bridge networks and published ports.

public struct FirewallError: Error, CustomStringConvertible, Sendable {
    public enum Code: Sendable, Hashable {
        /// A name, address or subnet that cannot go into a ruleset.
        case invalidArgument
        /// libnftables refused the transaction (its error output is in the message).
        case rejected
        /// The network namespace to act in could not be entered.
        case namespace
        /// This host cannot do what was asked (a missing tool, or icc=false with iptables but
        /// without br_netfilter).
        case unsupported
    }
    public let code: Code
    public let message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { message }
}

/// How Berth's rules reach the kernel: its own nftables tables through libnftables, or its own
/// chains through iptables-restore on hosts whose kernel has no nf_tables.
public enum FirewallBackend: String, Sendable {
    case nftables, iptables
}

public struct BridgeNetwork: Sendable, Hashable {
    /// Interface name of the Linux bridge, e.g. "berth0", "br-1a2b3c4d5e6f".
    public var bridge: String
    /// IPv4 CIDR, e.g. "172.18.0.0/16" (host bits are ignored).
    public var subnet: String
    /// No traffic in or out of the bridge except to/from its own members and the host's address on it.
    public var isInternal: Bool
    /// icc: containers on this bridge may talk to each other.
    public var interContainer: Bool
    /// Outbound NAT for traffic from the subnet leaving through other interfaces.
    public var masquerade: Bool
    /// The IPv6 prefix of a dual-stack network (`fd00:1::/64`), nil for IPv4 only.
    public var subnet6: String?

    public init(bridge: String, subnet: String, isInternal: Bool = false, interContainer: Bool = true,
                masquerade: Bool? = nil, subnet6: String? = nil) {
        self.bridge = bridge
        self.subnet = subnet
        self.subnet6 = subnet6
        self.isInternal = isInternal
        self.interContainer = interContainer
        self.masquerade = masquerade ?? !isInternal
    }
}

public enum PortProtocol: String, Sendable, Hashable {
    case tcp, udp
}

public struct PortForward: Sendable, Hashable {
    public var proto: PortProtocol
    /// nil = every local address of the host, 127.0.0.1 included.
    public var hostIP: String?
    public var hostPort: UInt16
    public var containerIP: String
    public var containerPort: UInt16

    public init(proto: PortProtocol, hostIP: String? = nil, hostPort: UInt16, containerIP: String,
                containerPort: UInt16) {
        self.proto = proto
        self.hostIP = hostIP
        self.hostPort = hostPort
        self.containerIP = containerIP
        self.containerPort = containerPort
    }

    /// What identifies a forward in the maps: one host (address, protocol, port) goes to one place.
    public struct Key: Sendable, Hashable {
        public var proto: PortProtocol
        public var hostIP: String?
        public var hostPort: UInt16
    }
    public var key: Key { Key(proto: proto, hostIP: hostIP, hostPort: hostPort) }
}
