// BerthNetlink owns network namespaces, links (bridge, veth, macvlan), addresses and routes,
// spoken through libnl-route-3 (CBerthNet). It knows nothing of Docker networks, IPAM or the
// engine; BerthNetwork builds on it. It must not import any orchestration module.
import CBerthNet

/// The one error type of BerthNetlink.
public struct NetlinkError: Error, CustomStringConvertible, Sendable {
    public enum Code: Sendable { case notFound, exists, invalidArgument, system }
    public let code: Code
    /// What failed, on which object, and the libnl or errno text.
    public let message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    init(_ code: Code, _ message: String) {
        self.init(code: code, message: message)
    }

    /// From a CBerthNet result: > 0 an errno, < 0 a libnl error code.
    init(result: Int32, _ what: String) {
        let code: Code = switch berth_error_kind(result) {
        case 1: .notFound
        case 2: .exists
        case 3: .invalidArgument
        default: .system
        }
        self.init(code, "\(what): \(String(cString: berth_nl_strerror(result)))")
    }

    public var description: String { message }
}

@inline(__always)
func check(_ result: Int32, _ what: @autoclosure () -> String) throws(NetlinkError) {
    if result != 0 { throw NetlinkError(result: result, what()) }
}
