import BerthOS

/// The one error type of BerthImages. `code` tells the API layer which HTTP status to answer
/// (404, 409, 400, 500); `message` says what went wrong in terms a person can act on.
public struct ImageError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Code: String, Sendable {
        case notFound, conflict, invalidArgument, invalidState
        /// A failed system call or an unexpected library error: the host's problem, not the request's.
        case system
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    static func notFound(_ m: String) -> ImageError { ImageError(.notFound, m) }
    static func conflict(_ m: String) -> ImageError { ImageError(.conflict, m) }
    static func invalid(_ m: String) -> ImageError { ImageError(.invalidArgument, m) }
    static func state(_ m: String) -> ImageError { ImageError(.invalidState, m) }
    static func system(_ m: String, errno: Int32) -> ImageError { ImageError(.system, SystemError(m, errno: errno).message) }
    static func system(_ e: SystemError) -> ImageError { ImageError(.system, e.message) }
}

/// Runs a BerthOS call and reports its failure as an `ImageError`.
@inline(__always)
func os<T>(_ body: () throws(SystemError) -> T) throws(ImageError) -> T {
    do { return try body() } catch { throw .system(error) }
}
