/// A container's attachment to one network, stored with the container (Docker's
/// `EndpointSettings`). The configured part stays across restarts; the live part (address,
/// interfaces, endpoint ID) is set while the container runs and cleared when it stops.
public struct Endpoint: Codable, Sendable, Equatable {
    public var networkID: String
    public var aliases: [String]
    /// `--ip`, `--ip6`: the addresses asked for, kept across restarts.
    public var requestedIPv4: IPv4Address?
    public var requestedIPv6: IPv6Address?
    public var links: [String]
    public var driverOpts: [String: String]

    // Live while the container runs.
    public var endpointID: String = ""
    public var ipv4: IPv4Address?
    public var prefixLength: Int = 0
    public var gateway: IPv4Address?
    /// On a dual-stack network.
    public var ipv6: IPv6Address?
    public var prefixLength6: Int?
    public var gateway6: IPv6Address?
    public var macAddress: String = ""
    /// The interface inside the container (`eth0`).
    public var interface: String = ""
    /// The host's end of the veth pair (bridge networks).
    public var hostInterface: String = ""

    public init(networkID: String, aliases: [String] = [], requestedIPv4: IPv4Address? = nil,
                links: [String] = [], driverOpts: [String: String] = [:]) {
        self.networkID = networkID; self.aliases = aliases; self.requestedIPv4 = requestedIPv4
        self.links = links; self.driverOpts = driverOpts
    }

    public var isLive: Bool { ipv4 != nil }

    /// Forgets what only a running container has.
    public mutating func clearLive() {
        endpointID = ""; ipv4 = nil; prefixLength = 0; gateway = nil; macAddress = ""
        ipv6 = nil; prefixLength6 = nil; gateway6 = nil
        interface = ""; hostInterface = ""
    }
}
