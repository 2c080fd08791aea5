import BerthImages
import FoundationEssentials

/// The error of a registry exchange, worded as dockerd words it.
public struct RegistryError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// No such repository, tag or manifest (dockerd answers 404).
        case notFound
        /// Credentials missing or refused (401).
        case unauthorized
        /// The registry sent something that is not a valid image, or the request was invalid (400).
        case invalid
        /// The registry failed or could not be reached (500).
        case unavailable
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

/// What was being done when a registry answered with an error, for dockerd's wording.
enum RegistryOperation: Sendable {
    case pull, push, login
}

/// distribution spec "Error Codes": `{"errors":[{"code","message","detail"}]}`.
struct RegistryErrorBody: Decodable {
    struct Entry: Decodable {
        var code: String
        var message: String?
    }

    var errors: [Entry]
}

extension RegistryError {
    /// An error response turned into dockerd's message (distribution/errors.go
    /// `translatePullError`): errcode errors read `<code in lower case>: <message>`.
    static func response(status: Int, reason: String, body: [UInt8], reference: Reference,
                         operation: RegistryOperation) -> RegistryError {
        let entry = (try? JSONDecoder().decode(RegistryErrorBody.self, from: Data(body)))?.errors.first
        let code = entry?.code.uppercased() ?? ""
        let cause: String
        if let entry {
            cause = code.lowercased().replacing("_", with: " ") + ": " + (entry.message ?? "")
        } else if status == 401 {
            cause = "unauthorized: authentication required"
        } else if status == 404 {
            cause = "not found"
        } else {
            cause = "received unexpected HTTP status: \(status) \(reason)"
        }
        if operation == .pull {
            switch code {
            case "DENIED", "UNAUTHORIZED":
                return RegistryError(.notFound, "pull access denied for \(reference.familiarName), repository does not exist or may require 'docker login': \(cause)")
            case "MANIFEST_UNKNOWN":
                return RegistryError(.notFound, "manifest for \(reference.familiarString) not found: \(cause)")
            case "NAME_UNKNOWN":
                return RegistryError(.notFound, "repository \(reference.familiarName) not found: \(cause)")
            default:
                if entry == nil && status == 401 {
                    return RegistryError(.notFound, "pull access denied for \(reference.familiarName), repository does not exist or may require 'docker login': \(cause)")
                }
            }
        }
        switch status {
        case 401, 403: return RegistryError(.unauthorized, cause)
        case 404: return RegistryError(.notFound, cause)
        case 400..<500: return RegistryError(.invalid, cause)
        default: return RegistryError(.unavailable, cause)
        }
    }
}
