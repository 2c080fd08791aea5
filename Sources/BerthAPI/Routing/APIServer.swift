import NIOCore
import NIOHTTP1
import NIOPosix

/// Where the daemon's log lines go; the server's own log type.
public typealias APILog = ServerLog

/// The Docker API server: BerthHTTP's server with Docker's URL versions, error bodies and
/// common headers.
public final class APIServer: Sendable {
    public struct Configuration: Sendable {
        /// Sent as `Docker-Experimental`.
        public var experimental = false
        /// How long `shutdown()` lets requests in flight finish before closing their connections.
        public var shutdownGracePeriod: Duration = .seconds(3)

        public init() {}
    }

    private let server: HTTPServer
    private let log: APILog

    public init(
        router: Router, configuration: Configuration = Configuration(), log: APILog = .discard,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.log = log
        var router = router
        router.prefix = .dockerAPIVersion
        var http = HTTPServer.Configuration()
        http.shutdownGracePeriod = configuration.shutdownGracePeriod
        server = HTTPServer(
            router: router, policy: .docker(experimental: configuration.experimental), configuration: http, log: log, group: group)
    }

    /// Starts serving on `address` and returns it as bound (a TCP port 0 becomes the real one).
    @discardableResult
    public func listen(_ address: ListenAddress, access: UnixSocketAccess = UnixSocketAccess()) async throws -> ListenAddress {
        let bound = try await server.listen(address, access: access)
        log.info("API listen on \(bound.description.replacing("unix://", with: ""))")
        return bound
    }

    /// The addresses being served.
    public var addresses: [ListenAddress] { server.addresses }

    /// Stops accepting, lets requests in flight finish, then closes what is left.
    public func shutdown() async { await server.shutdown() }
}

extension ServicePolicy {
    /// Docker's `{"message"}` error bodies, and the headers dockerd's middlewares put on every
    /// response (names as Go canonicalizes them).
    static func docker(experimental: Bool) -> ServicePolicy {
        let headers: HTTPHeaders = [
            "Api-Version": BerthAPI.maximumVersion.text,
            "Docker-Experimental": experimental ? "true" : "false",
            "Ostype": "linux",
            "Server": BerthAPI.serverHeader,
        ]
        return ServicePolicy(
            errorResponse: { error in .error(error as? APIError ?? .internalError("\(error)")) },
            commonHeaders: { headers })
    }
}

extension PathPrefix {
    /// dockerd's `/v{version:[0-9.]+}` prefix, its version checked against 1.24...1.47 once a
    /// route matched (the middleware wraps routes).
    public static let dockerAPIVersion = PathPrefix(
        recognizes: { segment in
            segment.count > 1 && segment.first == "v" && segment.dropFirst().allSatisfy { $0 == "." || ("0"..."9").contains($0) }
        },
        check: { segment in
            guard let version = segment.map(APIVersion.init(prefix:)) else { return nil }
            if version < BerthAPI.minimumVersion { return .versionTooOld(version) }
            if version > BerthAPI.maximumVersion { return .versionTooNew(version) }
            return nil
        })
}

extension APIVersion {
    /// `v1.47` → 1.47.
    init(prefix segment: String) { self.init(String(segment.dropFirst())) }
}

extension Request {
    /// The version from the path prefix, or the maximum when the path has none (as dockerd).
    public var apiVersion: APIVersion { prefix.map(APIVersion.init(prefix:)) ?? BerthAPI.maximumVersion }
}

extension Router.Match {
    public var apiVersion: APIVersion { prefix.map(APIVersion.init(prefix:)) ?? BerthAPI.maximumVersion }
}
