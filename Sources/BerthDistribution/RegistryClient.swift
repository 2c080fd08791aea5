import AsyncHTTPClient
import BerthImages
import BerthOCI
import FoundationEssentials
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

/// Talks to registries for the daemon: endpoints per the configuration, authentication with
/// tokens cached per registry and scope, and concurrent downloads of one blob de-duplicated.
/// One instance serves the whole daemon.
public final class RegistryClient: Sendable {
    public let configuration: RegistryConfiguration
    /// `Authorization` values by endpoint, scope and user, reused until a 401 asks again.
    private let authorizations = Mutex<[String: String]>([:])
    /// HTTP clients for registries with their own CAs (`certsDirectory`), by host.
    private let tlsClients = Mutex<[String: HTTPClient]>([:])
    /// Refresh tokens a login's token service granted, by endpoint, until `login` takes them.
    private let refreshTokens = Mutex<[String: String]>([:])
    func keepRefreshToken(_ endpoint: String, _ token: String) { refreshTokens.withLock { $0[endpoint] = token } }
    let inFlight = BlobDownloads()

    /// One HTTP client for the process, made on first use (never shut down: it lives as long as
    /// the daemon). Redirects are followed: Docker Hub sends blobs from a CDN. A failed connection
    /// fails the request at once instead of being retried until the deadline, so the HTTPS probe
    /// of a plain-HTTP registry falls back to HTTP without delay.
    static let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)

    static var configuration: HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .follow(max: 5, allowCycles: false),
            timeout: HTTPClient.Configuration.Timeout(connect: .seconds(10), read: .seconds(60)))
        configuration.connectionPool.retryConnectionEstablishment = false
        return configuration
    }

    public init(configuration: RegistryConfiguration = RegistryConfiguration()) {
        self.configuration = configuration
    }

    /// The HTTP client for an endpoint: the shared one, or for an HTTPS registry with CA
    /// files of its own, one that trusts them too (made once, kept for the daemon's life).
    func http(for endpoint: RegistryEndpoint) -> HTTPClient {
        guard endpoint.scheme == "https" else { return Self.http }
        let files = configuration.caFiles(for: endpoint.host)
        guard !files.isEmpty else { return Self.http }
        return tlsClients.withLock { clients in
            let key = endpoint.host + "|" + files.joined(separator: "|")
            if let client = clients[key] { return client }
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.additionalTrustRoots = files.map { .file($0) }
            var configuration = Self.configuration
            configuration.tlsConfiguration = tls
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            clients[key] = client
            return client
        }
    }

    func cachedAuthorization(_ key: String) -> String? { authorizations.withLock { $0[key] } }
    func cacheAuthorization(_ key: String, _ value: String) { authorizations.withLock { $0[key] = value } }

    /// Checks credentials as `docker login` does: `/v2/` answers 200 with them (Basic), or
    /// the token service grants a token (Bearer). Returns the identity token (an OAuth2
    /// refresh token) when the token service gave one, which the client stores instead of the
    /// password.
    @discardableResult
    public func login(_ credentials: RegistryCredentials) async throws(RegistryError) -> String? {
        var domain = credentials.serverAddress
        for prefix in ["https://", "http://"] where domain.hasPrefix(prefix) { domain = String(domain.dropFirst(prefix.count)) }
        if let slash = domain.firstIndex(of: "/") { domain = String(domain[..<slash]) }
        if domain.isEmpty || domain == "index.docker.io" || domain == "registry-1.docker.io" { domain = Reference.defaultDomain }
        let reference = Reference(domain: domain, path: "")
        var lastError = RegistryError(.unavailable, "no endpoint for \(domain)")
        for endpoint in configuration.endpoints(for: domain) where !endpoint.isMirror {
            let session = RegistrySession(client: self, endpoint: endpoint, reference: reference, scopes: [],
                                          credentials: credentials, operation: .login)
            do throws(RegistryError) {
                let response = try await session.send(.GET, "/v2/")
                _ = try? await response.body.collect(upTo: 1 << 20)
                if response.status == .ok {
                    return refreshTokens.withLock { $0.removeValue(forKey: endpoint.base) }
                }
                if response.status == .unauthorized {
                    throw RegistryError(.unauthorized, "login attempt to \(endpoint.base)/v2/ failed with status: 401 Unauthorized")
                }
                throw RegistryError(.unavailable, "login attempt to \(endpoint.base)/v2/ failed with status: \(response.status.code) \(response.status.reasonPhrase)")
            } catch let e where e.code == .unavailable && e.message.hasPrefix("transport:") {
                lastError = RegistryError(.unavailable, String(e.message.dropFirst("transport: ".count)))
                continue
            }
        }
        throw lastError
    }
}

/// Requests to one repository on one endpoint, authenticated on demand: a 401 with a challenge
/// is answered once (Basic with the credentials, or a Bearer token for `scopes`) and retried.
struct RegistrySession: Sendable {
    let client: RegistryClient
    let endpoint: RegistryEndpoint
    let reference: Reference
    /// `repository:<path>:pull[,push]` scopes the token must grant.
    let scopes: [String]
    let credentials: RegistryCredentials?
    let operation: RegistryOperation

    /// Per endpoint, scopes and exact credentials: a login with another password must not be
    /// answered with what the old one obtained.
    private var cacheKey: String {
        let secret = credentials.map { Digest.of(Array("\($0.username)\u{0}\($0.password)\u{0}\($0.identityToken)\u{0}\($0.registryToken)".utf8)).hex } ?? ""
        return endpoint.base + "|" + scopes.joined(separator: " ") + "|" + secret
    }

    func url(_ path: String) -> String {
        if path.hasPrefix("http://") || path.hasPrefix("https://") { return path }
        if path.hasPrefix("/v2/") { return endpoint.base + path }
        return endpoint.base + "/v2/" + reference.path + path
    }

    /// Sends a request; `path` is below the repository (`/manifests/latest`), absolute from the
    /// host (`/v2/`) or a full URL (an upload `Location`). `body` is made again for a retry.
    func send(_ method: HTTPMethod, _ path: String, headers: HTTPHeaders = [:],
              body: (@Sendable () -> HTTPClientRequest.Body)? = nil,
              timeout: TimeAmount = .minutes(30)) async throws(RegistryError) -> HTTPClientResponse {
        let target = url(path)
        func execute(_ authorization: String?) async throws(RegistryError) -> HTTPClientResponse {
            var request = HTTPClientRequest(url: target)
            request.method = method
            request.headers = headers
            request.headers.replaceOrAdd(name: "User-Agent", value: "berth/0.1 (linux)")
            if let authorization { request.headers.replaceOrAdd(name: "Authorization", value: authorization) }
            if let body { request.body = body() }
            do { return try await client.http(for: endpoint).execute(request, timeout: timeout) } catch {
                throw RegistryError(.unavailable, "transport: \(method) \"\(target)\": \(Self.describe(error))")
            }
        }
        let response = try await execute(client.cachedAuthorization(cacheKey))
        guard response.status == .unauthorized, let header = response.headers.first(name: "WWW-Authenticate") else {
            return response
        }
        let challenges = AuthChallenge.parse(header)
        guard let challenge = challenges.first(where: { $0.scheme == "bearer" }) ?? challenges.first(where: { $0.scheme == "basic" }) else {
            return response
        }
        _ = try? await response.body.collect(upTo: 1 << 20)
        let fresh = try await authorize(challenge)
        client.cacheAuthorization(cacheKey, fresh)
        return try await execute(fresh)
    }

    /// The `Authorization` value that answers `challenge` (distribution's token auth spec).
    private func authorize(_ challenge: AuthChallenge) async throws(RegistryError) -> String {
        if challenge.scheme == "basic" {
            guard let credentials, !credentials.username.isEmpty else {
                throw RegistryError(.unauthorized, "no basic auth credentials")
            }
            return credentials.basicAuthorization
        }
        guard let realm = challenge.realm, realm.hasPrefix("http") else {
            throw RegistryError(.unauthorized, "unauthorized: the registry's bearer challenge has no realm")
        }
        if let token = credentials?.registryToken, !token.isEmpty { return "Bearer " + token }
        var query: [(String, String)] = []
        if let service = challenge.service { query.append(("service", service)) }
        for scope in scopes { query.append(("scope", scope)) }
        var request: HTTPClientRequest
        if let refresh = credentials?.identityToken, !refresh.isEmpty {
            // OAuth2 refresh-token grant, as the docker CLI's identity tokens are used.
            request = HTTPClientRequest(url: realm)
            request.method = .POST
            let form = ([("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", "docker")] + query)
                .map { Self.percentEncode($0.0) + "=" + Self.percentEncode($0.1) }.joined(separator: "&")
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            request.body = .bytes(ByteBuffer(string: form))
        } else {
            if operation == .login, let credentials, !credentials.username.isEmpty {
                // Ask for a refresh token too (distribution's token spec): the identity token.
                query += [("offline_token", "true"), ("client_id", "docker")]
            }
            let q = query.map { Self.percentEncode($0.0) + "=" + Self.percentEncode($0.1) }.joined(separator: "&")
            request = HTTPClientRequest(url: realm + (q.isEmpty ? "" : (realm.contains("?") ? "&" : "?") + q))
            if let credentials, !credentials.username.isEmpty {
                request.headers.add(name: "Authorization", value: credentials.basicAuthorization)
            }
        }
        let body: ByteBuffer
        let response: HTTPClientResponse
        do {
            response = try await RegistryClient.http.execute(request, timeout: .seconds(60))
            body = try await response.body.collect(upTo: 1 << 20)
        } catch {
            throw RegistryError(.unavailable, "fetching a token from \(realm): \(Self.describe(error))")
        }
        guard response.status == .ok else {
            if response.status == .unauthorized || response.status == .forbidden {
                throw RegistryError(.unauthorized, "unauthorized: incorrect username or password")
            }
            throw RegistryError(.unavailable, "token service \(realm) answered \(response.status.code) \(response.status.reasonPhrase)")
        }
        struct TokenResponse: Decodable {
            var token: String?
            var access_token: String?
            var refresh_token: String?
        }
        guard let decoded = try? JSONDecoder().decode(TokenResponse.self, from: Data(body.readableBytesView)),
              let token = decoded.token ?? decoded.access_token, !token.isEmpty else {
            throw RegistryError(.unavailable, "token service \(realm) answered without a token")
        }
        if operation == .login, let refresh = decoded.refresh_token, !refresh.isEmpty {
            client.keepRefreshToken(endpoint.base, refresh)
        }
        return "Bearer " + token
    }

    /// Reads an error response's body and words it as dockerd would.
    func failure(_ response: HTTPClientResponse) async -> RegistryError {
        let body = (try? await response.body.collect(upTo: 1 << 20)).map { Array($0.readableBytesView) } ?? []
        return RegistryError.response(status: Int(response.status.code), reason: response.status.reasonPhrase, body: body,
                                      reference: reference, operation: operation)
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? HTTPClientError { return "\(e)" }
        return String(describing: error)
    }

    /// RFC 3986 unreserved characters pass; everything else is %XX.
    static func percentEncode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            if (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b == 0x2d || b == 0x2e || b == 0x5f || b == 0x7e {
                out.append(Character(UnicodeScalar(b)))
            } else {
                let hex = Array("0123456789ABCDEF")
                out += "%" + String(hex[Int(b >> 4)]) + String(hex[Int(b & 15)])
            }
        }
        return out
    }
}

/// Downloads of one blob shared by every pull that needs it at the same time: the first
/// starts it, the others wait for it.
actor BlobDownloads {
    private var running: [Digest: Task<Void, any Error>] = [:]

    /// Runs `download` unless one for `digest` is running; returns false when it waited for
    /// someone else's.
    func run(_ digest: Digest, _ download: @escaping @Sendable () async throws -> Void) async throws -> Bool {
        if let task = running[digest] {
            try await task.value
            return false
        }
        let task = Task { try await download() }
        running[digest] = task
        defer { running[digest] = nil }
        try await task.value
        return true
    }
}
