import NIOHTTP1

/// An error a route handler throws to answer with `status` and Docker's `{"message": ...}` body.
///
/// Engine errors are mapped onto these by the routes (not-found → 404, conflict → 409,
/// invalid argument → 400); anything else a handler throws becomes a 500 with its description.
public struct APIError: Error, Sendable, CustomStringConvertible {
    public var status: HTTPResponseStatus
    public var message: String

    public init(_ status: HTTPResponseStatus, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { "\(status.code): \(message)" }

    public static func badRequest(_ message: String) -> APIError { APIError(.badRequest, message) }
    public static func notFound(_ message: String) -> APIError { APIError(.notFound, message) }
    public static func conflict(_ message: String) -> APIError { APIError(.conflict, message) }
    public static func notImplemented(_ message: String) -> APIError { APIError(.notImplemented, message) }
    public static func internalError(_ message: String) -> APIError { APIError(.internalServerError, message) }

    /// dockerd's answer for a path no route matches.
    public static let pageNotFound = APIError(.notFound, "page not found")
    /// A path that exists, asked with a method it does not serve.
    public static let methodNotAllowed = APIError(.methodNotAllowed, "method not allowed")

    /// dockerd's wording (api/server/middleware/version.go) for a version outside the bounds.
    static func versionTooNew(_ version: APIVersion) -> APIError {
        .badRequest("client version \(version) is too new. Maximum supported API version is \(BerthAPI.maximumVersion)")
    }

    static func versionTooOld(_ version: APIVersion) -> APIError {
        .badRequest("client version \(version) is too old. Minimum supported API version is \(BerthAPI.minimumVersion), please upgrade your client to a newer version")
    }
}
