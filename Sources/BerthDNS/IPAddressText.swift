// Text forms of IPv4 (dotted quad) and IPv6 (RFC 4291 §2.2 in, RFC 5952 out) addresses.

public enum IPAddressText {
    /// Four bytes for a strict dotted quad ("10.0.0.1"), else nil.
    public static func ipv4Bytes(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                let value = UInt8(part)
            else { return nil }
            out.append(value)
        }
        return out
    }

    /// Sixteen bytes for an IPv6 address (with "::" and an optional dotted-quad tail); a zone
    /// suffix ("%eth0") is ignored. nil when it is not one.
    public static func ipv6Bytes(_ text: String) -> [UInt8]? {
        var text = Substring(text)
        if let percent = text.firstIndex(of: "%") { text = text[..<percent] }
        guard text.contains(":") else { return nil }
        func groups(_ part: Substring) -> [UInt16]? {
            if part.isEmpty { return [] }
            var out: [UInt16] = []
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if index == pieces.count - 1, piece.contains(".") {
                    guard let v4 = ipv4Bytes(String(piece)) else { return nil }
                    out.append(UInt16(v4[0]) << 8 | UInt16(v4[1]))
                    out.append(UInt16(v4[2]) << 8 | UInt16(v4[3]))
                    continue
                }
                guard !piece.isEmpty, piece.count <= 4, let value = UInt16(piece, radix: 16) else { return nil }
                out.append(value)
            }
            return out
        }
        var words: [UInt16]
        if let range = text.firstRange(of: "::") {
            guard let head = groups(text[..<range.lowerBound]), let tail = groups(text[range.upperBound...]),
                !text[range.upperBound...].contains("::"), head.count + tail.count <= 7
            else { return nil }
            words = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard let all = groups(text), all.count == 8 else { return nil }
            words = all
        }
        return words.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }

    /// Dotted quad for 4 bytes, RFC 5952 canonical text for 16 bytes.
    public static func format(_ bytes: [UInt8]) -> String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        guard bytes.count == 16 else { return "" }
        let words = (0..<8).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
        // Longest run (at least two) of zero words becomes "::"; the first wins on ties.
        var bestStart = -1, bestLength = 0, index = 0
        while index < 8 {
            guard words[index] == 0 else { index += 1; continue }
            var end = index
            while end < 8, words[end] == 0 { end += 1 }
            if end - index > bestLength, end - index >= 2 { bestStart = index; bestLength = end - index }
            index = end
        }
        func hex(_ range: Range<Int>) -> String { range.map { String(words[$0], radix: 16) }.joined(separator: ":") }
        if bestStart < 0 { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex(bestStart + bestLength..<8)
    }

    /// The reverse-lookup name (RFC 1035 §3.5, RFC 3596 §2.5) for an address, without trailing dot.
    public static func reverseName(_ text: String) -> String? {
        if let v4 = ipv4Bytes(text) { return v4.reversed().map(String.init).joined(separator: ".") + ".in-addr.arpa" }
        if let v6 = ipv6Bytes(text) {
            let nibbles = v6.flatMap { [$0 >> 4, $0 & 0xF] }
            return nibbles.reversed().map { String($0, radix: 16) }.joined(separator: ".") + ".ip6.arpa"
        }
        return nil
    }

    /// True for 127.0.0.0/8 and ::1 (also IPv4-mapped ::ffff:127.x.y.z).
    public static func isLoopback(_ text: String) -> Bool {
        if let v4 = ipv4Bytes(text) { return v4[0] == 127 }
        guard let v6 = ipv6Bytes(text) else { return false }
        if v6[0..<15].allSatisfy({ $0 == 0 }), v6[15] == 1 { return true }
        return v6[0..<10].allSatisfy({ $0 == 0 }) && v6[10] == 0xFF && v6[11] == 0xFF && v6[12] == 127
    }
}
