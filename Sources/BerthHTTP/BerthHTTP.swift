import NIOCore
import NIOHTTP1

/// BerthHTTP serves HTTP/1.1 over swift-nio: listening on unix sockets and TCP, routing by
/// method and path pattern, bodies streamed both ways with back-pressure, hijacked connections.
/// It knows nothing of Docker or registries: each user supplies a `ServicePolicy` saying how
/// errors read and which headers every response carries, and registers its routes:
///
///     var router = Router()
///     router.get("/v2/{name:.*}/blobs/{digest}") { request in ... }   // async, streams bodies
///     let server = HTTPServer(router: router, policy: policy, log: log)
///     try await server.listen(.tcp(host: "127.0.0.1", port: 5000))
///     ...
///     await server.shutdown()
public enum BerthHTTP {}

/// An error with the HTTP status it answers with; how its body reads is the `ServicePolicy`'s.
public struct HTTPError: Error, Sendable, CustomStringConvertible {
    public var status: HTTPResponseStatus
    public var message: String

    public init(_ status: HTTPResponseStatus, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { "\(status.code): \(message)" }

    public static func badRequest(_ message: String) -> HTTPError { HTTPError(.badRequest, message) }
    public static func notFound(_ message: String) -> HTTPError { HTTPError(.notFound, message) }
    public static func conflict(_ message: String) -> HTTPError { HTTPError(.conflict, message) }
    public static func notImplemented(_ message: String) -> HTTPError { HTTPError(.notImplemented, message) }
    public static func internalError(_ message: String) -> HTTPError { HTTPError(.internalServerError, message) }

    /// A path no route matches (dockerd's wording).
    public static let pageNotFound = HTTPError(.notFound, "page not found")
    /// A path that exists, asked with a method it does not serve.
    public static let methodNotAllowed = HTTPError(.methodNotAllowed, "method not allowed")
}

/// What the server's user decides for every response: the body and status of an error (a
/// thrown error, a routing failure, a malformed request) and the headers every response carries.
public struct ServicePolicy: Sendable {
    public var errorResponse: @Sendable (any Error) -> Response
    public var commonHeaders: @Sendable () -> HTTPHeaders

    public init(
        errorResponse: @escaping @Sendable (any Error) -> Response,
        commonHeaders: @escaping @Sendable () -> HTTPHeaders = { [:] }
    ) {
        self.errorResponse = errorResponse
        self.commonHeaders = commonHeaders
    }

    /// Errors as plain text with their status (`HTTPError`) or 500.
    public static let plain = ServicePolicy { error in
        if let error = error as? HTTPError { return .text(error.message + "\n", status: error.status) }
        return .text("\(error)\n", status: .internalServerError)
    }
}
