#if canImport(Glibc)
import Glibc
#endif

/// The one error type of BerthCgroups. `message` names the file and value involved so a person
/// can act on it, e.g. `cgroup: writing "50000000" to /sys/fs/cgroup/memory/berth/x/memory.limit_in_bytes: Device or resource busy`.
public struct CgroupError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: Sendable, Equatable {
        /// The configuration is malformed (bad path, bad device rule, impossible limits).
        case invalidArgument
        /// A cgroup file, directory or hierarchy does not exist.
        case notFound
        /// The host cannot express the request (controller not mounted, `unified` on v1, ...).
        case unsupported
        /// A system call failed; `errno` says why.
        case system
    }

    public let code: Code
    public let message: String
    /// The system error number when the failure came from a system call.
    public let errno: Int32?

    public init(_ code: Code, _ message: String, errno: Int32? = nil) {
        self.code = code
        self.message = message.hasPrefix("cgroup: ") ? message : "cgroup: " + message
        self.errno = errno
    }

    public var description: String { message }

    /// An error for a failed system call on `path`, with the errno text appended.
    static func system(_ what: String, errno number: Int32) -> CgroupError {
        let code: Code = number == ENOENT ? .notFound : .system
        return CgroupError(code, "\(what): \(String(cString: strerror(number)))", errno: number)
    }
}
