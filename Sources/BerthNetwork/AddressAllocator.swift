/// Hands out a network's container addresses. In memory only: the daemon rebuilds it from the
/// endpoints of running containers when it starts, so a crash cannot leak an address.
public struct AddressAllocator: Sendable {
    public let subnet: IPv4Subnet
    public let gateway: IPv4Address?
    public let range: IPv4Subnet
    private(set) var used: Set<IPv4Address> = []
    /// Where the next search starts: addresses are not reused right away, as in Docker.
    private var cursor: UInt32 = 0

    public init(subnet: IPv4Subnet, gateway: IPv4Address?, range: IPv4Subnet?) {
        self.subnet = subnet.canonical
        self.gateway = gateway
        self.range = (range ?? subnet).canonical
    }

    /// Whether `a` may be given to a container: inside the subnet, not its network or broadcast
    /// address, not the gateway.
    public func assignable(_ a: IPv4Address) -> Bool {
        guard subnet.contains(a), a != gateway else { return false }
        if subnet.prefix <= 30 && (a == subnet.network || a == subnet.broadcast) { return false }
        return true
    }

    /// Takes `requested`, or the next free address of the range.
    public mutating func allocate(_ requested: IPv4Address? = nil) throws(NetworkError) -> IPv4Address {
        if let requested {
            guard subnet.contains(requested) else {
                throw NetworkError(.invalidArgument, "address \(requested) is not in the network's subnet \(subnet)")
            }
            guard assignable(requested) else {
                throw NetworkError(.invalidArgument, "address \(requested) is reserved in subnet \(subnet)")
            }
            guard used.insert(requested).inserted else {
                throw NetworkError(.conflict, "Address already in use: \(requested)")
            }
            return requested
        }
        let count = range.size
        var i: UInt64 = 0
        while i < count {
            let candidate = range.host(UInt32((UInt64(cursor) + i) % count))
            i += 1
            if assignable(candidate), !used.contains(candidate) {
                used.insert(candidate)
                cursor = UInt32((UInt64(cursor) + i) % count)
                return candidate
            }
        }
        throw NetworkError(.conflict, "no available IPv4 addresses on this network's address pools: \(range)")
    }

    /// Marks an address taken (rebuilding state at daemon start); false if it was already.
    @discardableResult
    public mutating func reserve(_ a: IPv4Address) -> Bool { used.insert(a).inserted }

    public mutating func release(_ a: IPv4Address) { used.remove(a) }
}

/// Docker's default address pools: 172.17-31.0.0/16, then 192.168.0.0/16 in /20s.
public enum SubnetPool {
    public static let defaults: [IPv4Subnet] = {
        var out = (17...31).map { IPv4Subnet(IPv4Address(0xAC00_0000 | UInt32($0) << 16), prefix: 16) }
        for i in 0..<16 { out.append(IPv4Subnet(IPv4Address(0xC0A8_0000 | UInt32(i) << 12), prefix: 20)) }
        return out
    }()

    /// The first pool subnet that overlaps none of `taken` (other networks, the host's routes).
    public static func first(avoiding taken: [IPv4Subnet], pools: [IPv4Subnet] = defaults) -> IPv4Subnet? {
        pools.first { candidate in !taken.contains { $0.overlaps(candidate) } }
    }
}
