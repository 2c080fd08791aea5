// DNS wire format (RFC 1035 §4, AAAA from RFC 3596): just enough to answer container names,
// relay forwarded answers and let tests build queries. Every read is bounds-checked.

/// Record types the embedded server understands; other values stay raw in `DNSQuestion.rawType`.
public enum DNSRecordType: UInt16, Sendable {
    case a = 1, ns = 2, cname = 5, soa = 6, ptr = 12, mx = 15, txt = 16, aaaa = 28, srv = 33, any = 255
}

/// RCODE values (RFC 1035 §4.1.1).
public enum DNSResponseCode: UInt8, Sendable {
    case noError = 0, formatError = 1, serverFailure = 2, nameError = 3, notImplemented = 4, refused = 5
}

/// A malformed message.
public struct DNSMessageError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "malformed DNS message: \(message)" }
}

/// A domain name as a sequence of raw labels (case preserved, as it came off the wire).
public struct DNSName: Sendable, Hashable, CustomStringConvertible {
    public var labels: [[UInt8]]

    public init(labels: [[UInt8]]) { self.labels = labels }

    /// Dotted text, trailing dot optional. Empty or "." is the root.
    public init(_ text: String) {
        self.labels = text.split(separator: ".", omittingEmptySubsequences: true).map { Array($0.utf8) }
    }

    /// Dotted presentation form without trailing dot; bytes that would make the text ambiguous
    /// ('.', '\\', non-printable) are escaped as in RFC 1035 §5.1 so they never match a plain name.
    public var description: String { text(lowercased: false) }

    /// Lower-cased (ASCII only, RFC 4343) text used for case-insensitive matching.
    public var lowercasedText: String { text(lowercased: true) }

    private func text(lowercased: Bool) -> String {
        var out: [UInt8] = []
        for (index, label) in labels.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ".")) }
            for var byte in label {
                if lowercased, byte >= 0x41, byte <= 0x5A { byte += 0x20 }
                if byte == UInt8(ascii: ".") || byte == UInt8(ascii: "\\") {
                    out.append(UInt8(ascii: "\\")); out.append(byte)
                } else if byte <= 0x20 || byte >= 0x7F {
                    let zero = UInt8(ascii: "0")
                    out += [UInt8(ascii: "\\"), zero + byte / 100, zero + (byte / 10) % 10, zero + byte % 10]
                } else {
                    out.append(byte)
                }
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Wire length including the terminating root label.
    var wireLength: Int { labels.reduce(1) { $0 + 1 + $1.count } }
}

public struct DNSHeader: Sendable, Equatable {
    public var id: UInt16
    public var flags: UInt16
    public var questionCount: UInt16 = 0
    public var answerCount: UInt16 = 0
    public var authorityCount: UInt16 = 0
    public var additionalCount: UInt16 = 0

    public init(id: UInt16, flags: UInt16 = 0) {
        self.id = id
        self.flags = flags
    }

    public var isResponse: Bool { get { bit(15) } set { setBit(15, newValue) } }
    public var opcode: UInt8 {
        get { UInt8((flags >> 11) & 0xF) }
        set { flags = (flags & ~(0xF << 11)) | (UInt16(newValue & 0xF) << 11) }
    }
    public var isAuthoritative: Bool { get { bit(10) } set { setBit(10, newValue) } }
    public var isTruncated: Bool { get { bit(9) } set { setBit(9, newValue) } }
    public var recursionDesired: Bool { get { bit(8) } set { setBit(8, newValue) } }
    public var recursionAvailable: Bool { get { bit(7) } set { setBit(7, newValue) } }
    /// Raw 4-bit RCODE.
    public var rawResponseCode: UInt8 {
        get { UInt8(flags & 0xF) }
        set { flags = (flags & ~0xF) | UInt16(newValue & 0xF) }
    }
    public var responseCode: DNSResponseCode? { DNSResponseCode(rawValue: rawResponseCode) }

    private func bit(_ n: UInt16) -> Bool { flags & (1 << n) != 0 }
    private mutating func setBit(_ n: UInt16, _ on: Bool) {
        if on { flags |= (1 << n) } else { flags &= ~(1 << n) }
    }

    /// Parses the 12-byte header alone (enough to answer FORMERR to an otherwise broken query).
    public init(parsing bytes: [UInt8]) throws {
        var reader = DNSReader(bytes)
        try self.init(reader: &reader)
    }

    init(reader: inout DNSReader) throws {
        id = try reader.u16()
        flags = try reader.u16()
        questionCount = try reader.u16()
        answerCount = try reader.u16()
        authorityCount = try reader.u16()
        additionalCount = try reader.u16()
    }
}

public struct DNSQuestion: Sendable, Equatable {
    public var name: DNSName
    public var rawType: UInt16
    public var rawClass: UInt16

    public init(name: DNSName, type: DNSRecordType, rawClass: UInt16 = DNSClass.internet) {
        self.init(name: name, rawType: type.rawValue, rawClass: rawClass)
    }

    public init(name: DNSName, rawType: UInt16, rawClass: UInt16 = DNSClass.internet) {
        self.name = name
        self.rawType = rawType
        self.rawClass = rawClass
    }

    /// nil when the type is one the server does not know.
    public var type: DNSRecordType? { DNSRecordType(rawValue: rawType) }
}

public enum DNSClass {
    public static let internet: UInt16 = 1
}

/// Record data: decoded for the types the server produces, raw bytes for the rest.
public enum DNSRecordData: Sendable, Equatable {
    case ipv4([UInt8])  // 4 bytes
    case ipv6([UInt8])  // 16 bytes
    case name(DNSName)  // PTR, CNAME, NS
    case raw([UInt8])
}

public struct DNSRecord: Sendable, Equatable {
    public static let optType: UInt16 = 41  // EDNS(0) pseudo-record, RFC 6891

    public var name: DNSName
    public var rawType: UInt16
    public var rawClass: UInt16
    public var ttl: UInt32
    public var data: DNSRecordData

    public init(name: DNSName, rawType: UInt16, rawClass: UInt16 = DNSClass.internet, ttl: UInt32, data: DNSRecordData) {
        self.name = name
        self.rawType = rawType
        self.rawClass = rawClass
        self.ttl = ttl
        self.data = data
    }

    public var type: DNSRecordType? { DNSRecordType(rawValue: rawType) }

    /// The address in text form for A and AAAA records.
    public var addressText: String? {
        switch data {
        case .ipv4(let bytes): return IPAddressText.format(bytes)
        case .ipv6(let bytes): return IPAddressText.format(bytes)
        default: return nil
        }
    }
}

public struct DNSMessage: Sendable, Equatable {
    public var header: DNSHeader
    public var questions: [DNSQuestion] = []
    public var answers: [DNSRecord] = []
    public var authorities: [DNSRecord] = []
    public var additionals: [DNSRecord] = []

    public init(header: DNSHeader) { self.header = header }

    /// Parses a whole message; throws on any truncation, bad label or pointer loop.
    public init(parsing bytes: [UInt8]) throws {
        var reader = DNSReader(bytes)
        header = try DNSHeader(reader: &reader)
        for _ in 0..<header.questionCount {
            let name = try reader.name()
            questions.append(DNSQuestion(name: name, rawType: try reader.u16(), rawClass: try reader.u16()))
        }
        for _ in 0..<header.answerCount { answers.append(try reader.record()) }
        for _ in 0..<header.authorityCount { authorities.append(try reader.record()) }
        for _ in 0..<header.additionalCount { additionals.append(try reader.record()) }
    }

    /// A standard query with one question and a fresh random ID unless given.
    /// With `ednsUDPPayloadSize`, an EDNS(0) OPT record advertising it is added (RFC 6891 §6.1.2).
    public static func query(
        id: UInt16 = .random(in: 0...UInt16.max), name: String, type: DNSRecordType, recursionDesired: Bool = true,
        ednsUDPPayloadSize: UInt16? = nil
    ) -> DNSMessage {
        var header = DNSHeader(id: id)
        header.recursionDesired = recursionDesired
        var message = DNSMessage(header: header)
        message.questions = [DNSQuestion(name: DNSName(name), type: type)]
        if let ednsUDPPayloadSize {
            message.additionals = [DNSRecord(name: DNSName(labels: []), rawType: DNSRecord.optType,
                                             rawClass: ednsUDPPayloadSize, ttl: 0, data: .raw([]))]
        }
        return message
    }

    /// The EDNS(0) UDP payload size the sender advertised, if it sent an OPT record.
    public var ednsUDPPayloadSize: UInt16? {
        additionals.first { $0.rawType == DNSRecord.optType }.map { $0.rawClass }
    }

    /// Wire form. Record owner names equal to the first question's name are compressed to a
    /// pointer at it (RFC 1035 §4.1.4); nothing else is compressed.
    public func bytes() -> [UInt8] {
        var writer = DNSWriter()
        writer.u16(header.id)
        writer.u16(header.flags)
        writer.u16(UInt16(truncatingIfNeeded: questions.count))
        writer.u16(UInt16(truncatingIfNeeded: answers.count))
        writer.u16(UInt16(truncatingIfNeeded: authorities.count))
        writer.u16(UInt16(truncatingIfNeeded: additionals.count))
        for question in questions {
            writer.name(question.name)
            writer.u16(question.rawType)
            writer.u16(question.rawClass)
        }
        let firstName = questions.first?.name
        for record in answers + authorities + additionals {
            if let firstName, !record.name.labels.isEmpty, record.name == firstName {
                writer.u16(0xC000 | 12)
            } else {
                writer.name(record.name)
            }
            writer.u16(record.rawType)
            writer.u16(record.rawClass)
            writer.u32(record.ttl)
            let lengthAt = writer.bytes.count
            writer.u16(0)
            switch record.data {
            case .ipv4(let b), .ipv6(let b), .raw(let b): writer.bytes.append(contentsOf: b)
            case .name(let n): writer.name(n)
            }
            let length = writer.bytes.count - lengthAt - 2
            writer.bytes[lengthAt] = UInt8(truncatingIfNeeded: length >> 8)
            writer.bytes[lengthAt + 1] = UInt8(truncatingIfNeeded: length)
        }
        return writer.bytes
    }
}

struct DNSReader {
    let bytes: [UInt8]
    var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func u8() throws -> UInt8 {
        guard offset < bytes.count else { throw DNSMessageError("truncated at byte \(offset)") }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u16() throws -> UInt16 { UInt16(try u8()) << 8 | UInt16(try u8()) }

    mutating func u32() throws -> UInt32 { UInt32(try u16()) << 16 | UInt32(try u16()) }

    mutating func take(_ count: Int) throws -> [UInt8] {
        guard count >= 0, count <= bytes.count - offset else { throw DNSMessageError("truncated at byte \(offset)") }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    /// Reads a possibly compressed name. Pointers must point strictly backwards from where they
    /// sit, which rules out loops; the 255-byte limit of RFC 1035 §3.1 bounds the rest.
    mutating func name() throws -> DNSName {
        var labels: [[UInt8]] = []
        var length = 1
        var cursor = offset
        var resumeAt: Int? = nil
        while true {
            guard cursor < bytes.count else { throw DNSMessageError("name runs past the end") }
            let lengthByte = bytes[cursor]
            switch lengthByte & 0xC0 {
            case 0x00:
                let count = Int(lengthByte)
                if count == 0 {
                    offset = resumeAt ?? cursor + 1
                    return DNSName(labels: labels)
                }
                guard cursor + 1 + count <= bytes.count else { throw DNSMessageError("label runs past the end") }
                length += 1 + count
                guard length <= 255 else { throw DNSMessageError("name longer than 255 bytes") }
                labels.append(Array(bytes[cursor + 1..<cursor + 1 + count]))
                cursor += 1 + count
            case 0xC0:
                guard cursor + 1 < bytes.count else { throw DNSMessageError("pointer runs past the end") }
                let target = Int(lengthByte & 0x3F) << 8 | Int(bytes[cursor + 1])
                guard target < cursor else { throw DNSMessageError("compression pointer does not point backwards") }
                if resumeAt == nil { resumeAt = cursor + 2 }
                cursor = target
            default:
                throw DNSMessageError("unsupported label type \(lengthByte >> 6)")
            }
        }
    }

    mutating func record() throws -> DNSRecord {
        let name = try name()
        let type = try u16()
        let rawClass = try u16()
        let ttl = try u32()
        let length = Int(try u16())
        guard length <= bytes.count - offset else { throw DNSMessageError("record data runs past the end") }
        let end = offset + length
        let data: DNSRecordData
        switch DNSRecordType(rawValue: type) {
        case .a where length == 4: data = .ipv4(try take(4))
        case .aaaa where length == 16: data = .ipv6(try take(16))
        case .ptr, .cname, .ns:
            data = .name(try self.name())
            guard offset == end else { throw DNSMessageError("name does not fill its record data") }
        default: data = .raw(try take(length))
        }
        return DNSRecord(name: name, rawType: type, rawClass: rawClass, ttl: ttl, data: data)
    }
}

struct DNSWriter {
    var bytes: [UInt8] = []

    mutating func u16(_ v: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: v >> 8))
        bytes.append(UInt8(truncatingIfNeeded: v))
    }

    mutating func u32(_ v: UInt32) {
        u16(UInt16(truncatingIfNeeded: v >> 16))
        u16(UInt16(truncatingIfNeeded: v))
    }

    mutating func name(_ name: DNSName) {
        for label in name.labels {
            let label = label.prefix(63)
            bytes.append(UInt8(label.count))
            bytes.append(contentsOf: label)
        }
        bytes.append(0)
    }
}
