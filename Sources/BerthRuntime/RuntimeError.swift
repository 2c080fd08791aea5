/// What went wrong, in one line a person can act on; `code` lets callers map it
/// (the CLI to an exit status, a future API to an HTTP status).
public struct RuntimeError: Error, CustomStringConvertible, Sendable {
    public enum Code: Sendable { case notFound, conflict, invalidArgument, invalidState, system }
    public let code: Code
    public let message: String
    public init(_ code: Code, _ message: String) { self.code = code; self.message = message }
    public var description: String { message }

    static func invalid(_ field: String, _ what: String) -> RuntimeError {
        RuntimeError(.invalidArgument, "\(field): \(what)")
    }
}
