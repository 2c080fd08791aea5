import BerthOS
import Glibc

/// A client of the Docker Engine API (berthd or dockerd): one connection per request, the API
/// version negotiated once from `/_ping`'s `Api-Version` header, as the docker CLI does.
public final class EngineClient {
    public let address: DaemonAddress
    /// The newest API version this client speaks.
    public static let maxAPIVersion = "1.47"
    /// The version used in request paths: the lower of ours and the daemon's.
    public private(set) var apiVersion: String?

    public init(address: DaemonAddress) {
        self.address = address
    }

    /// The daemon address from `-H`, then `BERTH_HOST`, then `DOCKER_HOST`, then Berth's socket.
    public static func resolveHost(flag: String?, environment: [String: String]) -> String {
        if let flag, !flag.isEmpty { return flag }
        if let h = environment["BERTH_HOST"], !h.isEmpty { return h }
        if let h = environment["DOCKER_HOST"], !h.isEmpty { return h }
        return "unix:///run/berth/berth.sock"
    }

    /// One query item; nil values are left out.
    public typealias Query = [(String, String?)]

    /// `HEAD /_ping` once; a daemon that does not say falls back to our version.
    public func negotiate() throws(ClientError) -> String {
        if let apiVersion { return apiVersion }
        let response = try send("HEAD", "/_ping", versioned: false)
        if response.status >= 400 {
            _ = try? response.body()
        }
        var chosen = Self.maxAPIVersion
        if let theirs = response.headers["api-version"], Self.compare(theirs, chosen) < 0 {
            chosen = theirs
        }
        apiVersion = chosen
        return chosen
    }

    /// Numeric comparison of `1.47`-style versions.
    public static func compare(_ a: String, _ b: String) -> Int {
        let x = a.split(separator: ".").map { Int($0) ?? 0 }, y = b.split(separator: ".").map { Int($0) ?? 0 }
        for i in 0..<max(x.count, y.count) {
            let l = i < x.count ? x[i] : 0, r = i < y.count ? y[i] : 0
            if l != r { return l < r ? -1 : 1 }
        }
        return 0
    }

    /// Sends a request and reads the response head. The body is left to the caller.
    public func send(_ method: String, _ path: String, query: Query = [], body: [UInt8]? = nil,
                     contentType: String = "application/json", headers: [(String, String)] = [],
                     versioned: Bool = true, bodyFile: Int32? = nil) throws(ClientError) -> Response {
        // A regular file goes with its length (every daemon takes that); a pipe is chunked.
        var fileLength: Int?
        if let bodyFile {
            var st = stat()
            if fstat(bodyFile, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG { fileLength = Int(st.st_size) }
        }
        let prefix = versioned ? "/v\(try negotiate())" : ""
        let items = query.compactMap { k, v in v.map { "\(percentEncode(k))=\(percentEncode($0))" } }
        let target = prefix + path + (items.isEmpty ? "" : "?" + items.joined(separator: "&"))
        let connection = try Connection.open(address)
        var head = "\(method) \(target) HTTP/1.1\r\nHost: \(hostHeader)\r\nUser-Agent: berth/\(BerthVersion.version)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body {
            head += "Content-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n"
        } else if bodyFile != nil {
            head += "Content-Type: \(contentType)\r\n"
            head += fileLength.map { "Content-Length: \($0)\r\n" } ?? "Transfer-Encoding: chunked\r\n"
        } else if method == "POST" || method == "PUT" {
            head += "Content-Length: 0\r\n"
        }
        head += "\r\n"
        try connection.write(Array(head.utf8) + (body ?? []))
        if let bodyFile { try Self.sendBody(from: bodyFile, to: connection, chunked: fileLength == nil) }
        var lines: [String] = []
        while true {
            let line = try connection.readLine()
            if line.isEmpty {
                // 100 Continue is followed by the real head.
                if lines.first?.contains(" 100 ") == true { lines = []; continue }
                break
            }
            lines.append(line)
        }
        return try Response(connection: connection, head: lines, method: method)
    }

    private var hostHeader: String {
        switch address {
        case .unix: "api.moby.localhost"
        case .tcp(let host, let port): "\(host):\(port)"
        }
    }

    /// Streams a file (an image tar, a rootfs) as the request body.
    private static func sendBody(from fd: Int32, to connection: Connection, chunked: Bool) throws(ClientError) {
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ClientError(.connection, SystemError("read input").message)
            }
            if !chunked {
                if n == 0 { return }
                try connection.write(Array(buf[0..<n]))
                continue
            }
            try connection.write(Array(String(n, radix: 16).utf8) + [0x0D, 0x0A] + buf[0..<n] + [0x0D, 0x0A])
            if n == 0 { return }
        }
    }

    /// A request whose error answers (status >= 400) are thrown with the daemon's message.
    public func call(_ method: String, _ path: String, query: Query = [], json: JSON? = nil,
                     body: [UInt8]? = nil, contentType: String = "application/json",
                     headers: [(String, String)] = [], bodyFile: Int32? = nil) throws(ClientError) -> Response {
        let response = try send(method, path, query: query, body: json?.bytes ?? body, contentType: contentType,
                                headers: headers, bodyFile: bodyFile)
        if response.status >= 400 {
            let raw = (try? response.body()) ?? []
            let message = (try? JSON.parse(raw))?["message"]?.string
                ?? String(decoding: raw, as: UTF8.self).trimmingTrailingNewlines
            throw ClientError(.daemon, message.isEmpty ? "HTTP \(response.status)" : message, status: response.status)
        }
        return response
    }

    /// A request answered with one JSON document (or nothing: `.null`).
    @discardableResult
    public func json(_ method: String, _ path: String, query: Query = [], json body: JSON? = nil) throws(ClientError) -> JSON {
        let raw = try call(method, path, query: query, json: body).body()
        if raw.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D }) { return .null }
        return try Response.decode(raw)
    }

    public func get(_ path: String, query: Query = []) throws(ClientError) -> JSON {
        try json("GET", path, query: query)
    }

    /// Opens a hijacked stream (attach, exec start): `Connection: Upgrade`, `Upgrade: tcp`;
    /// dockerd answers 101, older daemons 200. Returns the connection and whether the stream is
    /// raw (TTY) or multiplexed, from the answer's content type.
    public func hijack(_ path: String, query: Query = [], json body: JSON? = nil) throws(ClientError) -> Response {
        try call("POST", path, query: query, json: body, headers: [("Connection", "Upgrade"), ("Upgrade", "tcp")])
    }
}

extension String {
    var trimmingTrailingNewlines: String {
        var s = self
        while s.last == "\n" || s.last == "\r" { s.removeLast() }
        return s
    }
}

/// The berth client's own version, shown by `berth version` and in the User-Agent.
public enum BerthVersion {
    public static let version = "0.1.0"
}
