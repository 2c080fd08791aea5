/// BerthEngine's error: a code the API layer maps to an HTTP status, and a message in Docker's
/// wording where Docker has one.
public struct EngineError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        case invalidArgument, notFound, conflict, invalidState
        /// Not allowed on this object (a predefined network): Docker answers 403.
        case forbidden
        /// The host failed us (a helper, a mount, the disk): the request was fine.
        case system
        /// Nothing to do: already started or already stopped (Docker answers 304).
        case notModified
        /// A feature the configuration selects cannot do this (Docker answers 501).
        case notImplemented
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
