/// An IPv4 address as its 32-bit value; text is the dotted quad.
public struct IPv4Address: Sendable, Hashable, Comparable, TextCodable {
    public var value: UInt32

    public init(_ value: UInt32) { self.value = value }

    /// Only the strict dotted quad (`10.0.0.1`): no shorthand, no leading zeros.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy(\.isASCII), let n = UInt32(p), n <= 255,
                  p == "0" || !p.hasPrefix("0") else { return nil }
            v = v << 8 | n
        }
        value = v
    }

    public var description: String {
        "\(value >> 24).\(value >> 16 & 0xff).\(value >> 8 & 0xff).\(value & 0xff)"
    }

    public var isLoopback: Bool { value >> 24 == 127 }
    public var isUnspecified: Bool { value == 0 }

    /// Docker's rule for a container's MAC: 02:42 followed by the address's four bytes, so a
    /// reused address never meets a stale neighbour entry with another MAC.
    public var containerMAC: String {
        let bytes = [0x02, 0x42, value >> 24, value >> 16 & 0xff, value >> 8 & 0xff, value & 0xff]
        return bytes.map { b in
            let s = String(b, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined(separator: ":")
    }

    public static func < (a: Self, b: Self) -> Bool { a.value < b.value }

}

/// An IPv4 prefix (`172.18.0.0/16`). The address is kept as given; `network` masks it.
public struct IPv4Subnet: Sendable, Hashable, TextCodable {
    public var address: IPv4Address
    public var prefix: Int

    public init(_ address: IPv4Address, prefix: Int) {
        self.address = address
        self.prefix = prefix
    }

    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let a = IPv4Address(parts[0]), parts[1].allSatisfy(\.isNumber),
              let p = Int(parts[1]), (0...32).contains(p) else { return nil }
        address = a
        prefix = p
    }

    public var mask: UInt32 { prefix == 0 ? 0 : UInt32.max << (32 - UInt32(prefix)) }
    public var network: IPv4Address { IPv4Address(address.value & mask) }
    public var broadcast: IPv4Address { IPv4Address(address.value | ~mask) }
    /// The subnet in canonical form (host bits cleared).
    public var canonical: IPv4Subnet { IPv4Subnet(network, prefix: prefix) }
    public var size: UInt64 { UInt64(1) << UInt64(32 - prefix) }

    public func contains(_ a: IPv4Address) -> Bool { a.value & mask == network.value }
    public func contains(_ other: IPv4Subnet) -> Bool { other.prefix >= prefix && contains(other.network) }
    public func overlaps(_ other: IPv4Subnet) -> Bool { contains(other.network) || other.contains(network) }

    /// The n-th address of the subnet (0 is the network address).
    public func host(_ n: UInt32) -> IPv4Address { IPv4Address(network.value &+ n) }

    public var description: String { "\(address)/\(prefix)" }

}
