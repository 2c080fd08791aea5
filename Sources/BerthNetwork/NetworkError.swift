/// What went wrong in networking, with a code the engine maps to an HTTP status.
public struct NetworkError: Error, CustomStringConvertible, Sendable {
    public enum Code: Sendable { case notFound, conflict, invalidArgument, forbidden, system }
    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
