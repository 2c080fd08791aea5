import FoundationEssentials
import NIOCore
import NIOHTTP1

/// One request as a route handler sees it.
public struct Request: Sendable {
    public let method: HTTPMethod
    /// The path after the router's prefix, percent-decoded (`/containers/abc/json`).
    public let path: String
    /// Values of the route pattern's `{name}` segments.
    public let pathParameters: [String: String]
    public let query: QueryItems
    public let headers: HTTPHeaders
    public let body: RequestBody
    /// The router's optional prefix segment, when the path began with one (`v1.44`).
    public let prefix: String?
    /// The client sent `Connection: Upgrade` and `Upgrade: tcp` (attach, exec start).
    public let wantsUpgrade: Bool
    /// The peer's address (nil on a unix socket or in tests): what per-client limits key on.
    public let remoteAddress: SocketAddress?

    public init(
        method: HTTPMethod, path: String, pathParameters: [String: String] = [:], query: QueryItems = QueryItems(),
        headers: HTTPHeaders = [:], body: RequestBody = .empty, prefix: String? = nil,
        wantsUpgrade: Bool = false, remoteAddress: SocketAddress? = nil
    ) {
        self.method = method
        self.path = path
        self.pathParameters = pathParameters
        self.query = query
        self.headers = headers
        self.body = body
        self.prefix = prefix
        self.wantsUpgrade = wantsUpgrade
        self.remoteAddress = remoteAddress
    }

    /// The value of the `{name}` segment; routes only ask for names their pattern has.
    public func parameter(_ name: String) -> String { pathParameters[name] ?? "" }

    /// The body as JSON, or nil when it is empty (dockerd treats an empty body as "no options").
    /// A non-JSON Content-Type is refused with dockerd's wording (`httputils.CheckForJSON`).
    public func decodeJSONIfPresent<T: Decodable>(_ type: T.Type = T.self, maxBytes: Int = 32 << 20) async throws -> T? {
        let bytes = try await body.collect(upTo: maxBytes)
        if bytes.readableBytes == 0 { return nil }
        if let contentType = headers.first(name: "content-type"),
           !contentType.lowercased().hasPrefix("application/json") {
            throw HTTPError.badRequest("unsupported Content-Type header (\(contentType)): must be 'application/json'")
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(bytes.readableBytesView))
        } catch let error as DecodingError {
            throw HTTPError.badRequest("invalid JSON: \(describe(error))")
        }
    }

    /// The body as JSON; an empty body is a 400.
    public func decodeJSON<T: Decodable>(_ type: T.Type = T.self, maxBytes: Int = 32 << 20) async throws -> T {
        guard let value = try await decodeJSONIfPresent(T.self, maxBytes: maxBytes) else {
            throw HTTPError.badRequest("request body is empty: a JSON document was expected")
        }
        return value
    }
}

private func describe(_ error: DecodingError) -> String {
    func path(_ context: DecodingError.Context) -> String {
        let keys = context.codingPath.map(\.stringValue).joined(separator: ".")
        return keys.isEmpty ? context.debugDescription : "\(keys): \(context.debugDescription)"
    }
    switch error {
    case .typeMismatch(_, let c), .valueNotFound(_, let c), .keyNotFound(_, let c), .dataCorrupted(let c): return path(c)
    @unknown default: return "\(error)"
    }
}

/// A request body: bytes as they arrive (chunked or not), read once.
///
/// Iterate it for uploads that must not be held in memory (image loads, archives), or
/// `collect(upTo:)` it for small JSON documents. The connection reads no further than the
/// consumer: a route that is slow to consume slows the client, not the daemon's memory.
/// A body that the route leaves unread is drained after the response, keeping the connection.
public struct RequestBody: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer

    enum Storage: Sendable {
        case empty
        case bytes(ByteBuffer)
        case stream(InboundBytes)
    }

    let storage: Storage

    init(storage: Storage) { self.storage = storage }

    public static let empty = RequestBody(storage: .empty)

    /// A body already in memory, for in-process callers and tests.
    public init(bytes: ByteBuffer) { storage = .bytes(bytes) }

    public struct AsyncIterator: AsyncIteratorProtocol {
        enum State {
            case done
            case single(ByteBuffer)
            case stream(InboundBytes.AsyncIterator)
        }

        var state: State

        /// Throws when the connection ends before the body does.
        public mutating func next() async throws -> ByteBuffer? {
            switch state {
            case .done:
                return nil
            case .single(let buffer):
                state = .done
                return buffer
            case .stream(let iterator):
                let next = try await iterator.next()
                state = next == nil ? .done : .stream(iterator)
                return next
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        switch storage {
        case .empty: AsyncIterator(state: .done)
        case .bytes(let buffer): AsyncIterator(state: .single(buffer))
        case .stream(let sequence): AsyncIterator(state: .stream(sequence.makeAsyncIterator()))
        }
    }

    /// The whole body in one buffer; 413 if it is longer than `maxBytes`.
    public func collect(upTo maxBytes: Int) async throws -> ByteBuffer {
        var iterator = makeAsyncIterator()
        guard var all = try await iterator.next() else { return ByteBuffer() }
        while var more = try await iterator.next() {
            if all.readableBytes + more.readableBytes > maxBytes { break }
            all.writeBuffer(&more)
        }
        if all.readableBytes > maxBytes || iterator.hasMore {
            throw HTTPError(.payloadTooLarge, "request body is larger than \(maxBytes) bytes")
        }
        return all
    }
}

extension RequestBody.AsyncIterator {
    fileprivate var hasMore: Bool {
        if case .done = state { return false }
        return true
    }
}
