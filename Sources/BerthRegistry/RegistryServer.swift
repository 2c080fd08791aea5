import BerthHTTP
import NIOCore
import NIOHTTP1
import NIOSSL

/// The registry server (`berth registry serve`): the distribution API over a `RegistryStore`,
/// served by BerthHTTP, with optional basic auth and TLS. Knows nothing of the engine.
public final class RegistryServer: Sendable {
    public struct Configuration: Sendable {
        public var root: String
        public var htpasswd: String?
        public var tlsCertificate: String?
        public var tlsKey: String?

        public init(root: String, htpasswd: String? = nil, tlsCertificate: String? = nil, tlsKey: String? = nil) {
            self.root = root
            self.htpasswd = htpasswd
            self.tlsCertificate = tlsCertificate
            self.tlsKey = tlsKey
        }
    }

    private let server: HTTPServer

    public init(_ configuration: Configuration, log: ServerLog = .discard) throws {
        let store = try RegistryStore(root: configuration.root)
        let authenticator = try configuration.htpasswd.map { try Authenticator(htpasswd: $0) }
        var router = Router()
        RegistryRoutes(store: store, authenticator: authenticator).register(on: &router)
        var http = HTTPServer.Configuration()
        http.requestLogLevel = .info
        switch (configuration.tlsCertificate, configuration.tlsKey) {
        case (nil, nil):
            break
        case (let certificate?, let key?):
            let context = try Self.tlsContext(certificate: certificate, key: key)
            http.prepareConnection = { channel in
                try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
            }
        default:
            throw RegistryError(.unsupported, "--tls-cert and --tls-key go together")
        }
        server = HTTPServer(router: router, policy: .registry, configuration: http, log: log)
    }

    private static func tlsContext(certificate: String, key: String) throws -> NIOSSLContext {
        let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
        let privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
        return try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(privateKey)))
    }

    /// Starts serving on `address`; returns it as bound (port 0 becomes the real one).
    @discardableResult
    public func listen(_ address: ListenAddress) async throws -> ListenAddress {
        try await server.listen(address, access: UnixSocketAccess(mode: 0o666, group: nil))
    }

    public func shutdown() async { await server.shutdown() }
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
