import FoundationEssentials
import NIOHTTP1

/// An error the registry answers with: one of the distribution spec's codes ("Error Codes"),
/// the status the spec gives it, and `{"errors":[{"code","message","detail"}]}` as the body.
public struct RegistryError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case blobUnknown = "BLOB_UNKNOWN"
        case blobUploadInvalid = "BLOB_UPLOAD_INVALID"
        case blobUploadUnknown = "BLOB_UPLOAD_UNKNOWN"
        case digestInvalid = "DIGEST_INVALID"
        case manifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
        case manifestInvalid = "MANIFEST_INVALID"
        case manifestUnknown = "MANIFEST_UNKNOWN"
        case nameInvalid = "NAME_INVALID"
        case nameUnknown = "NAME_UNKNOWN"
        case sizeInvalid = "SIZE_INVALID"
        case unauthorized = "UNAUTHORIZED"
        case denied = "DENIED"
        case unsupported = "UNSUPPORTED"
        case rangeInvalid = "RANGE_INVALID"
        case paginationNumberInvalid = "PAGINATION_NUMBER_INVALID"
        case tagInvalid = "TAG_INVALID"
        /// distribution's code for a client that must slow down (429).
        case tooManyRequests = "TOOMANYREQUESTS"
        /// distribution's code for a failure of the registry itself.
        case unknown = "UNKNOWN"

        var status: HTTPResponseStatus {
            switch self {
            case .blobUnknown, .blobUploadUnknown, .manifestUnknown, .nameUnknown: .notFound
            case .unauthorized: .unauthorized
            case .denied: .forbidden
            case .unsupported: .methodNotAllowed
            case .rangeInvalid: .rangeNotSatisfiable
            case .tooManyRequests: .tooManyRequests
            case .unknown: .internalServerError
            default: .badRequest
            }
        }
    }

    public var code: Code
    public var message: String
    public var detail: String?
    /// Extra headers the answer needs (`WWW-Authenticate`, `Range` after a 416).
    public var headers: HTTPHeaders = [:]

    public init(_ code: Code, _ message: String, detail: String? = nil) {
        self.code = code
        self.message = message
        self.detail = detail
    }

    public var status: HTTPResponseStatus { code.status }

    public var description: String { "\(code.rawValue): \(message)" + (detail.map { " (\($0))" } ?? "") }

    /// The error body the spec gives; `detail` is free-form, sent as a string.
    var body: ErrorBody { ErrorBody(errors: [.init(code: code.rawValue, message: message, detail: detail)]) }

    struct ErrorBody: Codable, Sendable {
        struct Entry: Codable, Sendable {
            var code: String
            var message: String
            var detail: String?
        }

        var errors: [Entry]
    }

    static func blobUnknown(_ digest: String) -> RegistryError {
        RegistryError(.blobUnknown, "blob unknown to registry", detail: digest)
    }

    static func manifestUnknown(_ reference: String) -> RegistryError {
        RegistryError(.manifestUnknown, "manifest unknown", detail: reference)
    }

    static func uploadUnknown(_ id: String) -> RegistryError {
        RegistryError(.blobUploadUnknown, "blob upload unknown to registry", detail: id)
    }

    static func nameUnknown(_ name: String) -> RegistryError {
        RegistryError(.nameUnknown, "repository name not known to registry", detail: name)
    }

    static func digestInvalid(_ message: String, detail: String? = nil) -> RegistryError {
        RegistryError(.digestInvalid, message, detail: detail)
    }

    /// A failure of the store itself (disk full, permissions): a 500 with what happened.
    static func storage(_ message: String) -> RegistryError {
        RegistryError(.unknown, message)
    }
}
