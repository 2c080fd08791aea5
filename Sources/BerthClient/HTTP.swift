/// An HTTP response whose body is read on demand: whole, or chunk by chunk for streams
/// (logs, events, pull progress, wait).
public final class Response {
    public let status: Int
    /// Header names lower-cased.
    public let headers: [String: String]
    public let connection: Connection
    private enum Framing { case length(Int), chunked, untilClose }
    private var framing: Framing
    private var chunkLeft = 0
    private var finished = false

    init(connection: Connection, head: [String], method: String) throws(ClientError) {
        guard let statusLine = head.first, statusLine.hasPrefix("HTTP/1."),
              let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") else {
            throw ClientError(.protocolError, "malformed response from the daemon: \(head.first ?? "")")
        }
        self.status = status
        self.connection = connection
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingSpaces
            headers[name] = headers[name].map { "\($0), \(value)" } ?? value
        }
        self.headers = headers
        if method == "HEAD" || status == 204 || status == 304 || status == 101 || (100..<200).contains(status) {
            framing = .length(0)
        } else if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            framing = .chunked
        } else if let length = headers["content-length"].flatMap({ Int($0) }) {
            framing = .length(length)
        } else {
            framing = .untilClose
        }
    }

    /// The next piece of the body as it arrives; nil at its end.
    public func next() throws(ClientError) -> [UInt8]? {
        if finished { return nil }
        switch framing {
        case .length(let left):
            if left == 0 { finished = true; return nil }
            guard let bytes = try connection.readSome(max: left) else {
                throw ClientError(.protocolError, "unexpected end of response from the daemon")
            }
            framing = .length(left - bytes.count)
            return bytes
        case .untilClose:
            guard let bytes = try connection.readSome() else { finished = true; return nil }
            return bytes
        case .chunked:
            if chunkLeft == 0 {
                let sizeLine = try connection.readLine()
                guard let size = Int(sizeLine.split(separator: ";").first ?? "", radix: 16) else {
                    throw ClientError(.protocolError, "malformed chunk size from the daemon: \(sizeLine)")
                }
                if size == 0 {
                    // Trailers end with an empty line.
                    while try !connection.readLine().isEmpty {}
                    finished = true
                    return nil
                }
                chunkLeft = size
            }
            guard let bytes = try connection.readSome(max: chunkLeft) else {
                throw ClientError(.protocolError, "unexpected end of response from the daemon")
            }
            chunkLeft -= bytes.count
            if chunkLeft == 0 { _ = try connection.readLine() }
            return bytes
        }
    }

    /// The whole body.
    public func body() throws(ClientError) -> [UInt8] {
        var all: [UInt8] = []
        while let piece = try next() { all += piece }
        return all
    }

    /// The body as newline-delimited JSON messages (events, pull and load progress),
    /// one at a time; nil at the end.
    public func nextJSONLine() throws(ClientError) -> JSON? {
        while true {
            if let nl = pendingLine.firstIndex(of: 0x0A) {
                let line = Array(pendingLine[..<nl])
                pendingLine.removeFirst(nl + 1)
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) { continue }
                return try Self.decode(line)
            }
            guard let more = try next() else {
                if pendingLine.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x0A }) { return nil }
                defer { pendingLine = [] }
                return try Self.decode(pendingLine)
            }
            pendingLine += more
        }
    }
    private var pendingLine: [UInt8] = []

    public static func decode(_ bytes: [UInt8]) throws(ClientError) -> JSON {
        do {
            return try JSON.parse(bytes)
        } catch {
            throw ClientError(.protocolError, "cannot read the daemon's answer: \(error)")
        }
    }
}

extension Substring {
    var trimmingSpaces: String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}

/// Percent-encodes a query value or path segment (RFC 3986 unreserved characters pass).
public func percentEncode(_ text: String) -> String {
    var out = ""
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
            out.unicodeScalars.append(Unicode.Scalar(byte))
        default:
            let hex = String(byte, radix: 16, uppercase: true)
            out += "%" + (hex.count == 1 ? "0" + hex : hex)
        }
    }
    return out
}
