import Glibc

/// An IPv6 address as two 64-bit halves; text as inet_ntop writes it (`fd00::2`).
public struct IPv6Address: Sendable, Hashable, TextCodable {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    public init?(_ text: some StringProtocol) {
        var raw = in6_addr()
        guard !text.isEmpty, inet_pton(AF_INET6, String(text), &raw) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: raw) { Array($0) }
        high = bytes[0..<8].reduce(0) { $0 << 8 | UInt64($1) }
        low = bytes[8..<16].reduce(0) { $0 << 8 | UInt64($1) }
    }

    public var description: String {
        var raw = in6_addr()
        withUnsafeMutableBytes(of: &raw) { buf in
            for i in 0..<8 {
                buf[i] = UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64(i)))
                buf[8 + i] = UInt8(truncatingIfNeeded: low >> (56 - 8 * UInt64(i)))
            }
        }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        _ = inet_ntop(AF_INET6, &raw, &text, socklen_t(text.count))
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

}

/// An IPv6 prefix (`fd00:1::/64`). Container addresses are counted in the low 64 bits, so a
/// prefix longer than /64 keeps its host bits there too.
public struct IPv6Subnet: Sendable, Hashable, TextCodable {
    public var address: IPv6Address
    public var prefix: Int

    public init(_ address: IPv6Address, prefix: Int) {
        self.address = address
        self.prefix = prefix
    }

    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let a = IPv6Address(parts[0]), parts[1].allSatisfy(\.isNumber),
              let p = Int(parts[1]), (0...128).contains(p) else { return nil }
        address = a
        prefix = p
    }

    var highMask: UInt64 { prefix == 0 ? 0 : prefix >= 64 ? .max : UInt64.max << UInt64(64 - prefix) }
    var lowMask: UInt64 { prefix <= 64 ? 0 : prefix == 128 ? .max : UInt64.max << UInt64(128 - prefix) }

    public var network: IPv6Address { IPv6Address(high: address.high & highMask, low: address.low & lowMask) }
    public var canonical: IPv6Subnet { IPv6Subnet(network, prefix: prefix) }

    public func contains(_ a: IPv6Address) -> Bool {
        a.high & highMask == network.high && a.low & lowMask == network.low
    }

    public func overlaps(_ other: IPv6Subnet) -> Bool { contains(other.network) || other.contains(network) }

    /// How many addresses the allocator may count through (capped at 2^32).
    public var hostCount: UInt64 { prefix >= 96 ? UInt64(1) << UInt64(128 - prefix) : UInt64(1) << 32 }

    /// The n-th address of the subnet (0 is the subnet-router anycast address).
    public func host(_ n: UInt64) -> IPv6Address { IPv6Address(high: network.high, low: network.low &+ n) }

    /// A random unique-local /64 (RFC 4193: fd00::/8 with a random 40-bit global ID and subnet 0).
    public static func randomUniqueLocal() -> IPv6Subnet {
        var g = SystemRandomNumberGenerator()
        let global = g.next() & 0xFF_FFFF_FFFF
        return IPv6Subnet(IPv6Address(high: 0xFD00_0000_0000_0000 | global << 16, low: 0), prefix: 64)
    }

    public var description: String { "\(address)/\(prefix)" }

}

/// Hands out a network's IPv6 container addresses, as `AddressAllocator` does for IPv4.
public struct AddressAllocator6: Sendable {
    public let subnet: IPv6Subnet
    public let gateway: IPv6Address?
    private(set) var used: Set<IPv6Address> = []
    private var cursor: UInt64 = 1

    public init(subnet: IPv6Subnet, gateway: IPv6Address?) {
        self.subnet = subnet.canonical
        self.gateway = gateway
    }

    public mutating func allocate(_ requested: IPv6Address? = nil) throws(NetworkError) -> IPv6Address {
        if let requested {
            guard subnet.contains(requested), requested != gateway, requested != subnet.network else {
                throw NetworkError(.invalidArgument, "address \(requested) is not a free host address of subnet \(subnet)")
            }
            guard used.insert(requested).inserted else { throw NetworkError(.conflict, "Address already in use: \(requested)") }
            return requested
        }
        let count = subnet.hostCount
        for i in 0..<min(count, 1 << 20) {
            let n = (cursor &+ i) % count
            let candidate = subnet.host(n)
            if n == 0 || candidate == gateway || used.contains(candidate) { continue }
            used.insert(candidate)
            cursor = n &+ 1
            return candidate
        }
        throw NetworkError(.conflict, "no available IPv6 addresses in \(subnet)")
    }

    @discardableResult
    public mutating func reserve(_ a: IPv6Address) -> Bool { used.insert(a).inserted }
    public mutating func release(_ a: IPv6Address) { used.remove(a) }
}
