import Glibc

/// Textual IP addresses and prefixes, checked before they reach libnl (whose parser also
/// accepts words like "default" and MAC addresses).
enum CIDR {
    /// Validates "a.b.c.d/len" or "x::y/len" (prefix required).
    static func validate(_ text: String, what: String) throws(NetlinkError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let family = family(of: String(parts[0])),
              let length = Int(parts[1]), length >= 0, length <= (family == AF_INET ? 32 : 128)
        else {
            throw NetlinkError(.invalidArgument, "\(what): \"\(text)\" is not a CIDR like 172.18.0.1/16 or fd00::1/64")
        }
    }

    /// Validates a plain address literal.
    static func validateAddress(_ text: String, what: String) throws(NetlinkError) {
        if family(of: text) == nil {
            throw NetlinkError(.invalidArgument, "\(what): \"\(text)\" is not an IPv4 or IPv6 address")
        }
    }

    static func family(of address: String) -> Int32? {
        var buffer = in6_addr()
        if inet_pton(AF_INET, address, &buffer) == 1 { return AF_INET }
        if inet_pton(AF_INET6, address, &buffer) == 1 { return AF_INET6 }
        return nil
    }
}

/// Interface names as the kernel accepts them (dev_valid_name): 1-15 bytes, no "/", ":" or
/// whitespace, not "." or "..". libnl would silently truncate longer names.
enum LinkName {
    static func validate(_ name: String, what: @autoclosure () -> String) throws(NetlinkError) {
        let bytes = Array(name.utf8)
        let valid = !bytes.isEmpty && bytes.count <= 15 && name != "." && name != ".."
            && !bytes.contains { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: ":") || $0 <= 0x20 || $0 == 0x7f }
        if !valid {
            throw NetlinkError(.invalidArgument,
                               "\(what()): \"\(name)\" is not a valid interface name (1-15 characters, no /, : or spaces)")
        }
    }
}
