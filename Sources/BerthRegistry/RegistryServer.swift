import BerthHTTP
import NIOCore
import NIOHTTP1
import NIOSSL
import NIOTLS
import Synchronization

/// The registry server (`berth registry serve`): the distribution API over a `RegistryStore`,
/// served by BerthHTTP, with optional basic auth and TLS. Knows nothing of the engine.
///
/// Hostile clients are bounded: connections idle or slow to send a request head are closed,
/// their number is capped, TLS handshakes must finish in time, password checks are limited
/// (`Authenticator`), and uploads nobody writes to any more are purged.
public final class RegistryServer: Sendable {
    public struct Configuration: Sendable {
        public var root: String
        public var htpasswd: String?
        public var tlsCertificate: String?
        public var tlsKey: String?
        /// How long a kept-alive connection may wait for its next request.
        public var idleTimeout: Duration? = .seconds(60)
        /// How long a request head may take to arrive.
        public var requestHeadTimeout: Duration? = .seconds(30)
        /// How long a TLS handshake may take, from the connection's start.
        public var tlsHandshakeTimeout: Duration? = .seconds(10)
        /// The most connections at once (the idle one longest goes first at the cap).
        public var maximumConnections: Int? = 1024
        /// Uploads nothing has written to for this long are removed.
        public var uploadPurgingAge: Duration = .seconds(3600)
        /// How often uploads are checked for that.
        public var uploadPurgingInterval: Duration = .seconds(600)
        public var authLimits = Authenticator.Limits()

        public init(root: String, htpasswd: String? = nil, tlsCertificate: String? = nil, tlsKey: String? = nil) {
            self.root = root
            self.htpasswd = htpasswd
            self.tlsCertificate = tlsCertificate
            self.tlsKey = tlsKey
        }
    }

    private let server: HTTPServer
    private let store: RegistryStore
    /// Shared while serving, so that garbage-collect refuses to run meanwhile.
    private let lock: RegistryStore.Lock
    private let purging = Mutex<Task<Void, Never>?>(nil)
    private let configuration: Configuration
    private let log: ServerLog

    public init(_ configuration: Configuration, log: ServerLog = .discard) throws(RegistryError) {
        let store = try RegistryStore(root: configuration.root)
        lock = try store.lock(for: .serving)
        let authenticator = try configuration.htpasswd.map { path throws(RegistryError) in
            try Authenticator(htpasswd: path, limits: configuration.authLimits)
        }
        var router = Router()
        RegistryRoutes(store: store, authenticator: authenticator).register(on: &router)
        var http = HTTPServer.Configuration()
        http.requestLogLevel = .info
        http.idleTimeout = configuration.idleTimeout
        http.requestHeadTimeout = configuration.requestHeadTimeout
        http.maximumConnections = configuration.maximumConnections
        switch (configuration.tlsCertificate, configuration.tlsKey) {
        case (nil, nil):
            break
        case (let certificate?, let key?):
            let context: NIOSSLContext
            do {
                context = try Self.tlsContext(certificate: certificate, key: key)
            } catch {
                throw RegistryError(.unknown, "cannot load the TLS certificate or key: \(error)")
            }
            let handshakeTimeout = configuration.tlsHandshakeTimeout
            http.prepareConnection = { channel in
                try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                if let handshakeTimeout {
                    try channel.pipeline.syncOperations.addHandler(TLSHandshakeDeadline(handshakeTimeout))
                }
            }
        default:
            throw RegistryError(.unsupported, "--tls-cert and --tls-key go together")
        }
        server = HTTPServer(router: router, policy: .registry, configuration: http, log: log)
        self.store = store
        self.configuration = configuration
        self.log = log
    }

    private static func tlsContext(certificate: String, key: String) throws -> NIOSSLContext {
        let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
        let privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
        return try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(privateKey)))
    }

    /// Starts serving on `address`; returns it as bound (port 0 becomes the real one).
    @discardableResult
    public func listen(_ address: ListenAddress) async throws -> ListenAddress {
        let bound = try await server.listen(address, access: UnixSocketAccess(mode: 0o666, group: nil))
        startPurging()
        return bound
    }

    public func shutdown() async {
        purging.withLock { $0?.cancel() }
        await server.shutdown()
    }

    /// Removes abandoned uploads now and then: a client that starts uploads and walks away
    /// would otherwise leave their files and state for ever.
    private func startPurging() {
        let (store, log) = (self.store, self.log)
        let (age, interval) = (configuration.uploadPurgingAge, configuration.uploadPurgingInterval)
        purging.withLock { task in
            guard task == nil else { return }
            task = Task.detached {
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    if Task.isCancelled { return }
                    for id in store.purgeUploads(idleFor: age) { log.info("purged an abandoned upload", [("id", id)]) }
                }
            }
        }
    }
}

/// Closes a connection whose TLS handshake has not finished in time: a client that connects
/// and sends nothing (or a handshake byte a minute) would otherwise hold it for ever.
final class TLSHandshakeDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?

    init(_ timeout: Duration) { self.timeout = TimeAmount(timeout) }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if timer == nil { arm(context) }
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            timer?.cancel()
            timer = nil
            context.fireUserInboundEventTriggered(event)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    private func arm(_ context: ChannelHandlerContext) {
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }
}

extension ServicePolicy {
    /// The spec's error bodies, and `Docker-Distribution-API-Version` on every response
    /// (clients check it on `/v2/` to know they talk to a v2 registry).
    static let registry = ServicePolicy(
        errorResponse: { error in
            let registryError: RegistryError
            let status: HTTPResponseStatus
            switch error {
            case let error as RegistryError:
                (registryError, status) = (error, error.status)
            case let error as HTTPError:
                // Routing and body errors keep their status (404 for no such endpoint, 405, 413).
                let code: RegistryError.Code =
                    error.status == .payloadTooLarge ? .sizeInvalid : error.status.code >= 500 ? .unknown : .unsupported
                (registryError, status) = (RegistryError(code, error.message), error.status)
            default:
                (registryError, status) = (.storage("\(error)"), .internalServerError)
            }
            var response = (try? Response.json(registryError.body, status: status)) ?? Response(status: status)
            for (name, value) in registryError.headers { response.headers.replaceOrAdd(name: name, value: value) }
            return response
        },
        commonHeaders: { ["Docker-Distribution-API-Version": "registry/2.0"] })
}
