#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// An HTTP/1.1 server: listeners, connections, orderly shutdown.
///
/// Each connection's pipeline is the HTTP/1.1 request decoder (created with
/// `.forwardBytes`, so a hijack keeps what the client sent past the request), the response
/// encoder and `HTTPConnectionHandler`; connections allow remote half-closure so a client that
/// closes stdin on a hijacked stream still reads the output.
public final class HTTPServer: Sendable {
    public struct Configuration: Sendable {
        /// How long `shutdown()` lets requests in flight finish before closing their connections.
        public var shutdownGracePeriod: Duration = .seconds(3)

        /// The level of the one line logged per request (method, uri, status, duration).
        public var requestLogLevel: ServerLog.Level = .debug
        /// Runs first on each accepted connection, before the HTTP handlers go in (TLS does).
        public var prepareConnection: (@Sendable (any Channel) throws -> Void)?

        // Limits against clients that hold connections without using them. All off by
        // default: berthd's clients keep attach, logs and events streams open at will.

        /// How long a kept-alive connection may wait for its next request; nil waits forever.
        public var idleTimeout: Duration?
        /// How long a request head may take to arrive, counted from the connection's start or
        /// from the first byte after the previous response; nil waits forever.
        public var requestHeadTimeout: Duration?
        /// The most connections served at once; nil for no cap. At the cap the connection idle
        /// longest (no request in progress) is closed to make room for the new one, as nginx
        /// reuses keep-alive connections; with none idle, the new one is closed.
        public var maximumConnections: Int?

        public init() {}
    }

    private struct Listener {
        let address: ListenAddress
        let channel: any Channel
        /// The socket file and its inode, removed at shutdown if it is still ours.
        let socketFile: (path: String, inode: ino_t)?
    }

    private struct Connection {
        let channel: any Channel
        /// Since when it has had no request in progress; nil while one is.
        var idleSince: ContinuousClock.Instant?
    }

    private struct State {
        var listeners: [Listener] = []
        var connections: [ObjectIdentifier: Connection] = [:]
        var shuttingDown = false
    }

    private let responder: Responder
    private let configuration: Configuration
    private let group: any EventLoopGroup
    private let state = Mutex(State())

    public init(
        router: Router, policy: ServicePolicy = .plain, configuration: Configuration = Configuration(),
        log: ServerLog = .discard, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.responder = Responder(router: router, log: log, policy: policy, requestLogLevel: configuration.requestLogLevel)
        self.configuration = configuration
        self.group = group
    }

    private var log: ServerLog { responder.log }

    /// Starts serving on `address` and returns it as bound (a TCP port 0 becomes the real one).
    /// A unix socket gets `access` (0660, group `berth` if that group exists by default); its
    /// parent directory is created and a stale socket replaced, but never one that still answers.
    @discardableResult
    public func listen(_ address: ListenAddress, access: UnixSocketAccess = UnixSocketAccess()) async throws -> ListenAddress {
        let bootstrap = makeBootstrap()
        switch address {
        case .unix(let path):
            try UnixSocketFile.prepare(path)
            // No moment with a world-connectable socket: bind with a closed umask, then open up.
            let previous = umask(0o777)
            let channel: any Channel
            do {
                channel = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: false).get()
            } catch {
                umask(previous)
                throw ListenAddressError("cannot listen on \(path): \(error)")
            }
            umask(previous)
            var st = stat()
            do {
                try UnixSocketFile.applyAccess(path, access)
                guard lstat(path, &st) == 0 else { throw ListenAddressError("stat \(path): \(errnoText())") }
            } catch {
                try? await channel.close()
                unlink(path)
                throw error
            }
            state.withLock { $0.listeners.append(Listener(address: address, channel: channel, socketFile: (path, st.st_ino))) }
            log.debug("listening on \(path)")
            return address
        case .tcp(let host, let port):
            let channel: any Channel
            do {
                channel = try await bootstrap.bind(host: host, port: port).get()
            } catch {
                throw ListenAddressError("cannot listen on \(address): \(error)")
            }
            let bound = ListenAddress.tcp(host: host, port: channel.localAddress?.port ?? port)
            state.withLock { $0.listeners.append(Listener(address: bound, channel: channel, socketFile: nil)) }
            log.debug("listening on \(bound)")
            return bound
        }
    }

    /// The addresses being served.
    public var addresses: [ListenAddress] { state.withLock { $0.listeners.map(\.address) } }

    /// Stops accepting, closes the listeners and removes their socket files, lets requests in
    /// flight finish (streams and hijacked connections are cancelled), then closes what is left
    /// after the grace period.
    public func shutdown() async {
        let listeners = state.withLock { state in
            state.shuttingDown = true
            defer { state.listeners = [] }
            return state.listeners
        }
        for listener in listeners {
            try? await listener.channel.close()
            if let (path, inode) = listener.socketFile {
                var st = stat()
                if lstat(path, &st) == 0, st.st_ino == inode { unlink(path) }
            }
        }
        for connection in state.withLock({ $0.connections.values.map(\.channel) }) {
            connection.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        let deadline = ContinuousClock.now + configuration.shutdownGracePeriod
        while ContinuousClock.now < deadline, !state.withLock({ $0.connections.isEmpty }) {
            try? await Task.sleep(for: .milliseconds(10))
        }
        for connection in state.withLock({ $0.connections.values.map(\.channel) }) {
            try? await connection.close()
        }
    }

    /// The number of connections open now.
    public var connectionCount: Int { state.withLock { $0.connections.count } }

    private func makeBootstrap() -> ServerBootstrap {
        // Swift's runtime can crash when two threads instantiate the same generic metadata for
        // the first time at once (swiftlang/swift#58414); it did here when two event loops took
        // berthd's first connections together. Instantiate the pipeline's types once, before.
        withExtendedLifetime((ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)),
                              HTTPResponseEncoder())) {}
        let responder = self.responder
        let configuration = self.configuration
        let timed = configuration.idleTimeout != nil || configuration.requestHeadTimeout != nil
            || configuration.maximumConnections != nil
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { [weak self] channel in
                guard let self, self.track(channel) else {
                    return channel.close()
                }
                let id = ObjectIdentifier(channel)
                return channel.eventLoop.makeCompletedFuture {
                    try configuration.prepareConnection?(channel)
                    var deadlines: ConnectionDeadlines?
                    if timed {
                        let handler = ConnectionDeadlines(
                            idle: configuration.idleTimeout, head: configuration.requestHeadTimeout,
                            idleChanged: { [weak self] idle in self?.markIdle(id, idle) })
                        try channel.pipeline.syncOperations.addHandler(handler)
                        deadlines = handler
                    }
                    let decoder = ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes))
                    let encoder = HTTPResponseEncoder()
                    let handler = HTTPConnectionHandler(responder: responder, decoder: decoder, encoder: encoder, deadlines: deadlines)
                    try channel.pipeline.syncOperations.addHandlers([decoder, encoder, handler])
                }
            }
    }

    /// Registers a new connection for shutdown and the cap; false once shutting down, or at
    /// the cap with no idle connection to close instead.
    private func track(_ channel: any Channel) -> Bool {
        let id = ObjectIdentifier(channel)
        let cap = configuration.maximumConnections
        var evicted: (any Channel)?
        let accepted = state.withLock { state in
            guard !state.shuttingDown else { return false }
            if let cap, state.connections.count >= cap {
                let idle = state.connections.compactMap { key, value in value.idleSince.map { (key, value.channel, $0) } }
                guard let oldest = idle.min(by: { $0.2 < $1.2 }) else { return false }
                state.connections.removeValue(forKey: oldest.0)
                evicted = oldest.1
            }
            state.connections[id] = Connection(channel: channel, idleSince: .now)
            return true
        }
        if let evicted {
            log.debug("connection limit reached: closing the connection idle longest")
            evicted.close(promise: nil)
        }
        if accepted {
            channel.closeFuture.whenComplete { [weak self] _ in
                _ = self?.state.withLock { $0.connections.removeValue(forKey: id) }
            }
        } else if cap != nil {
            log.debug("connection limit reached with every connection busy: refusing a connection")
        }
        return accepted
    }

    private func markIdle(_ id: ObjectIdentifier, _ idle: Bool) {
        state.withLock { $0.connections[id]?.idleSince = idle ? .now : nil }
    }
}
