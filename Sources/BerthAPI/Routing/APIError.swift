@_exported import BerthHTTP
import NIOCore
import NIOHTTP1

/// An error a route handler throws to answer with `status` and Docker's `{"message": ...}` body.
///
/// Engine errors are mapped onto these by the routes (not-found → 404, conflict → 409,
/// invalid argument → 400); anything else a handler throws becomes a 500 with its description.
public typealias APIError = HTTPError

extension HTTPError {
    /// dockerd's wording (api/server/middleware/version.go) for a version outside the bounds.
    static func versionTooNew(_ version: APIVersion) -> APIError {
        .badRequest("client version \(version) is too new. Maximum supported API version is \(BerthAPI.maximumVersion)")
    }

    static func versionTooOld(_ version: APIVersion) -> APIError {
        .badRequest("client version \(version) is too old. Minimum supported API version is \(BerthAPI.minimumVersion), please upgrade your client to a newer version")
    }
}

struct ErrorBody: Codable, Sendable {
    var message: String
}

extension Response {
    /// Docker's error body `{"message": "..."}`.
    public static func error(_ error: APIError) -> Response {
        (try? json(ErrorBody(message: error.message), status: error.status))
            ?? Response(status: error.status, body: .bytes(ByteBuffer(string: "{\"message\":\"internal error\"}\n")))
    }
}
