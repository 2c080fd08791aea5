// Turns one query into one reply: answered from the daemon's lookup, or forwarded upstream.

enum DNSTransport: Sendable { case udp, tcp }

struct DNSResponder: Sendable {
    /// RFC 1035 §4.2.1 limit for UDP replies without EDNS; EDNS sizes above `maxUDPPayload` are capped.
    static let classicUDPPayload = 512
    static let maxUDPPayload: UInt16 = 4096

    let lookup: DNSLookup
    let forwarder: DNSForwarder

    /// The reply bytes, or nil to drop the query (unparseable header, or not a query at all).
    func respond(to query: [UInt8], over transport: DNSTransport) async -> [UInt8]? {
        guard let header = try? DNSHeader(parsing: query), !header.isResponse else { return nil }
        guard let message = try? DNSMessage(parsing: query) else {
            return Self.reply(to: DNSMessage(header: header), code: .formatError).bytes()
        }
        guard header.opcode == 0 else { return Self.reply(to: message, code: .notImplemented).bytes() }
        guard message.questions.count == 1, let question = message.questions.first else {
            return Self.reply(to: message, code: .formatError).bytes()
        }

        if question.rawClass == DNSClass.internet, let type = question.type {
            var reply = Self.reply(to: message, code: .noError)
            switch await lookup(question.name.lowercasedText, type) {
            case .forward:
                break
            case .nameError:
                reply.header.rawResponseCode = DNSResponseCode.nameError.rawValue
                return Self.encode(reply, limit: Self.sizeLimit(for: message, over: transport))
            case .addresses(let addresses):
                // A known name without an address of the asked family is NODATA, never forwarded.
                reply.answers = Self.addressRecords(addresses, for: question, type: type)
                return Self.encode(reply, limit: Self.sizeLimit(for: message, over: transport))
            case .names(let names):
                if type == .ptr || type == .any {
                    reply.answers = names.map {
                        DNSRecord(name: question.name, rawType: DNSRecordType.ptr.rawValue,
                                  ttl: DNSServer.answerTTL, data: .name(DNSName($0)))
                    }
                }
                return Self.encode(reply, limit: Self.sizeLimit(for: message, over: transport))
            }
        }

        if let answer = await forwarder.forward(query, id: header.id, over: transport) { return answer }
        return Self.reply(to: message, code: .serverFailure).bytes()
    }

    static func addressRecords(_ addresses: [String], for question: DNSQuestion, type: DNSRecordType) -> [DNSRecord] {
        var records: [DNSRecord] = []
        for address in addresses {
            if type == .a || type == .any, let v4 = IPAddressText.ipv4Bytes(address) {
                records.append(DNSRecord(name: question.name, rawType: DNSRecordType.a.rawValue,
                                         ttl: DNSServer.answerTTL, data: .ipv4(v4)))
            } else if type == .aaaa || type == .any, let v6 = IPAddressText.ipv6Bytes(address) {
                records.append(DNSRecord(name: question.name, rawType: DNSRecordType.aaaa.rawValue,
                                         ttl: DNSServer.answerTTL, data: .ipv6(v6)))
            }
        }
        return records
    }

    /// A reply skeleton echoing the query's ID, opcode, RD bit and question as asked; RA on,
    /// AA off (as Docker answers). An EDNS query gets an OPT record back (RFC 6891 §6.1.1).
    static func reply(to query: DNSMessage, code: DNSResponseCode) -> DNSMessage {
        var header = DNSHeader(id: query.header.id)
        header.isResponse = true
        header.opcode = query.header.opcode
        header.recursionDesired = query.header.recursionDesired
        header.recursionAvailable = true
        header.rawResponseCode = code.rawValue
        var reply = DNSMessage(header: header)
        reply.questions = query.questions
        if query.ednsUDPPayloadSize != nil {
            reply.additionals = [DNSRecord(name: DNSName(labels: []), rawType: DNSRecord.optType,
                                           rawClass: maxUDPPayload, ttl: 0, data: .raw([]))]
        }
        return reply
    }

    static func sizeLimit(for query: DNSMessage, over transport: DNSTransport) -> Int {
        guard transport == .udp else { return Int(UInt16.max) }
        guard let advertised = query.ednsUDPPayloadSize else { return classicUDPPayload }
        return max(classicUDPPayload, Int(min(advertised, maxUDPPayload)))
    }

    /// Drops answers from the end until the reply fits, setting TC (RFC 2181 §9) so the client
    /// retries over TCP.
    static func encode(_ message: DNSMessage, limit: Int) -> [UInt8] {
        var message = message
        var bytes = message.bytes()
        while bytes.count > limit, !message.answers.isEmpty {
            message.answers.removeLast()
            message.header.isTruncated = true
            bytes = message.bytes()
        }
        return bytes
    }
}
