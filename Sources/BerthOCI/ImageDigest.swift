import CCryptoHash

/// A content digest as image-spec descriptor.md defines it, restricted to the one algorithm
/// Berth stores: `sha256:` followed by exactly 64 lowercase hex digits.
public struct Digest: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The 64 lowercase hex digits (the "encoded" part).
    public let hex: String

    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public let input: String
        public let reason: String
        public var description: String { "invalid digest \"\(input)\": \(reason)" }
    }

    /// Parses `sha256:<64 hex>`; everything else throws with what is wrong with it.
    public init(_ string: String) throws(ParseError) {
        guard let colon = string.firstIndex(of: ":") else {
            throw ParseError(input: string, reason: "want sha256:<64 hex digits>")
        }
        let algorithm = string[..<colon]
        guard algorithm == "sha256" else {
            throw ParseError(input: string, reason: algorithm.isEmpty
                ? "missing algorithm before ':'" : "unsupported algorithm \"\(algorithm)\" (only sha256)")
        }
        try self.init(hex: String(string[string.index(after: colon)...]), original: string)
    }

    public init(hex: String) throws(ParseError) {
        try self.init(hex: hex, original: hex)
    }

    private init(hex: String, original: String) throws(ParseError) {
        let utf8 = hex.utf8
        guard utf8.count == 64 else {
            throw ParseError(input: original, reason: "sha256 wants 64 hex digits, got \(utf8.count) characters")
        }
        for c in utf8 where !((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66)) {
            throw ParseError(input: original, reason: c >= 0x41 && c <= 0x46
                ? "hex digits must be lowercase" : "not a hex digit: \(Unicode.Scalar(c))")
        }
        self.hex = hex
    }

    /// From the 32 bytes of a SHA-256 result.
    public init(sha256 bytes: some Collection<UInt8>) {
        precondition(bytes.count == 32, "a SHA-256 digest has 32 bytes")
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 0xf)]) }
        self.hex = String(decoding: out, as: UTF8.self)
    }

    /// The digest of `bytes`.
    public static func of(_ bytes: some Collection<UInt8>) -> Digest {
        var h = SHA256()
        h.update(bytes)
        return h.finalize()
    }

    public var algorithm: String { "sha256" }
    public var string: String { "sha256:" + hex }
    public var description: String { string }
    /// The 12-digit form Docker prints as an image ID.
    public var shortHex: String { String(hex.prefix(12)) }

    public static func < (a: Digest, b: Digest) -> Bool { a.hex < b.hex }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let s = try c.decode(String.self)
        do { try self.init(s) } catch {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(string)
    }
}

/// SHA-256, streaming, through OpenSSL's libcrypto (hardware SHA extensions where the CPU has
/// them: hashing is what bounds pulls, pushes and the registry's uploads).
public struct SHA256: @unchecked Sendable {
    private var context = SHA256_CTX()
    private var length: UInt64 = 0

    public init() {
        SHA256_Init(&context)
    }

    /// Bytes hashed so far.
    public var count: UInt64 { length }

    public mutating func update(_ bytes: some Collection<UInt8>) {
        if let done: Void = bytes.withContiguousStorageIfAvailable({ update(UnsafeRawBufferPointer($0)) }) {
            return done
        }
        Array(bytes).withUnsafeBytes { update($0) }
    }

    public mutating func update(_ buffer: UnsafeRawBufferPointer) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        length &+= UInt64(buffer.count)
        SHA256_Update(&context, base, buffer.count)
    }

    /// Pads and returns the digest; the hasher is spent afterwards.
    public consuming func finalize() -> Digest {
        Digest(sha256: finalizeBytes())
    }

    public consuming func finalizeBytes() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        out.withUnsafeMutableBufferPointer { _ = SHA256_Final($0.baseAddress, &context) }
        return out
    }

    public static func hash(_ bytes: some Collection<UInt8>) -> [UInt8] {
        var h = SHA256()
        h.update(bytes)
        return h.finalizeBytes()
    }
}
