import FoundationEssentials
import NIOCore
import NIOHTTP1

/// What a route handler answers: a status, headers and one of four kinds of body.
///
/// The server adds its `ServicePolicy`'s common headers to every response, so handlers set
/// only what is particular to them.
public struct Response: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: Body

    public enum Body: Sendable {
        case empty
        /// A body known in full, sent with `Content-Length`.
        case bytes(ByteBuffer)
        /// A body written while the handler runs, sent chunked (logs, events, stats, pull
        /// progress), or with the `Content-Length` the handler set (a large file). Returning ends the body; throwing cuts the connection, so the client sees
        /// a truncated stream rather than a clean end. The task is cancelled if the client leaves.
        case stream(@Sendable (ResponseStream) async throws -> Void)
        /// The connection leaves HTTP after the response head (attach, exec start); see
        /// `HijackedStream`. Returning closes the connection.
        case hijack(@Sendable (HijackedStream) async throws -> Void)
    }

    public init(status: HTTPResponseStatus = .ok, headers: HTTPHeaders = [:], body: Body = .empty) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// `value` as JSON with a trailing newline (Go's `json.Encoder`, which dockerd uses).
    public static func json(_ value: some Encodable, status: HTTPResponseStatus = .ok) throws -> Response {
        var buffer = ByteBuffer(bytes: try HTTPJSON.encoder.encode(value))
        buffer.writeInteger(UInt8(ascii: "\n"))
        return Response(status: status, headers: ["Content-Type": "application/json"], body: .bytes(buffer))
    }

    public static func text(_ text: String, status: HTTPResponseStatus = .ok, contentType: String = "text/plain; charset=utf-8") -> Response {
        Response(status: status, headers: ["Content-Type": contentType], body: .bytes(ByteBuffer(string: text)))
    }

    public static func noContent() -> Response { Response(status: .noContent) }

    /// A chunked body written by `body`; `contentType` as the endpoint documents it
    /// (`application/json` for events and stats, `application/vnd.docker.multiplexed-stream`
    /// for non-TTY logs, `application/vnd.docker.raw-stream` for TTY logs).
    public static func stream(
        status: HTTPResponseStatus = .ok, contentType: String,
        _ body: @escaping @Sendable (ResponseStream) async throws -> Void
    ) -> Response {
        Response(status: status, headers: ["Content-Type": contentType], body: .stream(body))
    }

    /// Takes over the connection as dockerd's attach and exec start do: `101 UPGRADED` with
    /// `Connection: Upgrade`, `Upgrade: tcp` when the client asked to upgrade, else `200 OK`,
    /// then raw bytes both ways. `contentType` is `application/vnd.docker.raw-stream` (TTY) or
    /// `application/vnd.docker.multiplexed-stream` (stdout/stderr framed, API 1.42+).
    public static func hijack(
        contentType: String = "application/vnd.docker.raw-stream",
        _ body: @escaping @Sendable (HijackedStream) async throws -> Void
    ) -> Response {
        Response(status: .ok, headers: ["Content-Type": contentType], body: .hijack(body))
    }
}

public enum HTTPJSON {
    /// Shared encoder; JSONEncoder is Sendable and safe to use from several tasks at once.
    public static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.withoutEscapingSlashes]
        return e
    }()
}

/// The writer of a streamed (chunked) response body.
public struct ResponseStream: Sendable {
    let sink: @Sendable (ByteBuffer) async throws -> Void

    public init(_ sink: @escaping @Sendable (ByteBuffer) async throws -> Void) { self.sink = sink }

    /// Sends `buffer` as one chunk. Returns when the connection can take more; throws once the
    /// client has gone.
    public func write(_ buffer: ByteBuffer) async throws {
        if buffer.readableBytes > 0 { try await sink(buffer) }
    }

    public func write(_ text: String) async throws { try await write(ByteBuffer(string: text)) }

    /// One JSON document and a newline, the framing of dockerd's streaming JSON endpoints.
    public func writeJSON(_ value: some Encodable) async throws {
        var buffer = ByteBuffer(bytes: try HTTPJSON.encoder.encode(value))
        buffer.writeInteger(UInt8(ascii: "\n"))
        try await write(buffer)
    }
}

/// A connection that has left HTTP: what the client sends after the request arrives on
/// `inbound`, and `write` sends to it unframed.
///
/// `inbound` ends when the client half-closes (`docker exec -i` at the end of its stdin) or
/// disconnects; writing is still possible after a half-close. `finish()` half-closes our side
/// (the client reads EOF); when the route's closure returns the connection is closed.
/// If the client disconnects, writes throw, and the route's task is cancelled once it has read
/// what the client sent before leaving (a route that never reads `inbound` learns of the
/// disconnect from its next write).
public final class HijackedStream: Sendable {
    /// Bytes from the client, pulled with back-pressure: the socket is read only as fast as
    /// this is consumed. Single consumer.
    public let inbound: AsyncStream<ByteBuffer>
    let sink: @Sendable (ByteBuffer) async throws -> Void
    let shutdownOutput: @Sendable () async -> Void

    public init(
        inbound: AsyncStream<ByteBuffer>, write: @escaping @Sendable (ByteBuffer) async throws -> Void,
        finish: @escaping @Sendable () async -> Void
    ) {
        self.inbound = inbound
        self.sink = write
        self.shutdownOutput = finish
    }

    /// Sends `buffer` as is. Returns when the connection can take more; throws once the client
    /// has gone.
    public func write(_ buffer: ByteBuffer) async throws {
        if buffer.readableBytes > 0 { try await sink(buffer) }
    }

    public func write(_ bytes: some Sequence<UInt8>) async throws { try await write(ByteBuffer(bytes: bytes)) }

    /// Flushes what was written and closes the sending side (`shutdown(SHUT_WR)`).
    public func finish() async { await shutdownOutput() }
}
