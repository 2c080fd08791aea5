import CBerthNet
import Glibc

/// Network namespaces pinned by bind mounts on files (like `ip netns`, at paths Berth chooses).
/// setns changes only the calling thread, so each entry runs on a short-lived thread of its own.
public enum NetworkNamespace {
    /// Creates a new network namespace, brings its loopback up, and pins it with a bind mount at
    /// `path` (the file is created; its directory must exist). `.exists` if `path` already is one.
    public static func create(at path: String) throws(NetlinkError) {
        let result = berth_netns_create(path)
        if result == ENOENT {
            throw NetlinkError(.notFound, "cannot create network namespace at \(path): "
                + "directory \(parent(of: path)) does not exist")
        }
        try check(result, result == EEXIST
            ? "cannot create network namespace at \(path): it already is a network namespace"
            : "cannot create network namespace at \(path)")
    }

    /// Unmounts (MNT_DETACH) and unlinks `path`; does nothing if it is absent.
    public static func remove(at path: String) {
        berth_netns_remove(path)
    }

    /// Whether `path` is a pinned network namespace.
    public static func exists(at path: String) -> Bool {
        berth_netns_is_pinned(path) != 0
    }

    /// Runs `body` on a fresh thread that has entered the namespace at `path`, waits, and returns
    /// its result or rethrows its error. Writing /proc/sys/net/... from `body` affects that namespace.
    public static func run<T: Sendable>(in path: String, _ body: @Sendable () throws -> T) throws -> T {
        try withoutActuallyEscaping(body) { body in
            var outcome: Result<T, any Error>?
            try withUnsafeMutablePointer(to: &outcome) { slot in
                let job = ThreadJob { slot.pointee = Result { try body() } }
                let result = withExtendedLifetime(job) {
                    berth_netns_run(path, { context in
                        Unmanaged<ThreadJob>.fromOpaque(context!).takeUnretainedValue().work()
                    }, Unmanaged.passUnretained(job).toOpaque())
                }
                try check(result, "cannot enter network namespace at \(path)")
            }
            return try outcome!.get()
        }
    }

    /// Opens socket(domain, type|SOCK_CLOEXEC) inside the namespace at `path`, binds it to
    /// `address`:`port` (IPv4 or IPv6 literal) and, for SOCK_STREAM, listens (backlog 128).
    /// The caller owns the returned fd.
    public static func bindSocket(in path: String, type: Int32, address: String, port: UInt16) throws(NetlinkError) -> Int32 {
        var fd: Int32 = -1
        try check(berth_netns_bind_socket(path, type, address, port, &fd),
                  "cannot bind a socket to \(address):\(port) in network namespace \(path)")
        return fd
    }

    private static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}

/// The work handed through C to the namespace thread. The thread is joined before the caller
/// returns, so the non-escaping state it touches outlives it.
private final class ThreadJob: @unchecked Sendable {
    let work: () -> Void
    init(_ work: @escaping () -> Void) { self.work = work }
}
