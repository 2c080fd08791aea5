/// BerthVolumes' error: a code the engine maps onto its own, and a message in Docker's wording.
public struct VolumeError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        case invalidArgument, notFound, conflict
        /// The host failed us (the disk, a mount): the request was fine.
        case system
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
