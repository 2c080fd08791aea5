import BerthOCI
import BerthOS
import CCrypt
import FoundationEssentials
import NIOCore
import NIOPosix
import Synchronization

/// Basic authentication against an htpasswd file of bcrypt hashes (`user:$2y$...`), as
/// distribution's `htpasswd` access controller: every request needs valid credentials, and a
/// 401 carries `WWW-Authenticate: Basic realm=...`.
///
/// bcrypt is slow on purpose, which makes it a lever against the server itself, so:
/// - a verified user and password is remembered for a while (a pull sends them with every
///   request), under a keyed digest so the memory holds nothing to guess offline;
/// - an unknown user is checked against a dummy hash of the same cost, so the answer takes as
///   long and reads the same as a wrong password: nothing tells which users exist;
/// - a client (by address) that keeps failing waits, with a backoff that doubles, and gets
///   429 TOOMANYREQUESTS meanwhile without any hashing;
/// - hashing runs on a small pool of its own with a bounded queue, never on the shared task
///   pool, so a flood of guesses cannot slow down requests that need no hashing.
public final class Authenticator: Sendable {
    public struct Limits: Sendable {
        /// Failed checks a client may make in a row before it has to wait.
        public var failuresBeforeBackoff = 5
        /// The first wait; each further failure doubles it, up to `maximumBackoff`.
        public var backoff: Duration = .seconds(1)
        public var maximumBackoff: Duration = .seconds(60)
        /// How long verified credentials are trusted without hashing again.
        public var cacheLifetime: Duration = .seconds(300)
        /// Threads that run bcrypt, and how many checks may wait for one before 429.
        public var hashingThreads = 2
        public var hashingQueue = 16

        public init() {}
    }

    /// What a check of one user and password came to.
    public enum Outcome: Sendable, Equatable {
        case accepted
        case rejected
        /// Not checked: the client failed too often, or too many checks are waiting.
        case throttled(retryAfter: Duration)
    }

    public let realm: String
    private let limits: Limits
    private let hashes: [String: String]
    /// What unknown users are compared with: a bcrypt hash of the usual cost.
    private let dummyHash: String
    /// Keys the cache's digests; random per process.
    private let cacheKey: [UInt8]
    private let pool: NIOThreadPool
    /// Checks running or waiting on `pool`.
    private let hashing = Atomic<Int>(0)

    private struct Failures {
        var count: Int
        var last: ContinuousClock.Instant
        var blockedUntil: ContinuousClock.Instant?
    }

    private struct State {
        /// Verified credentials by keyed digest, with when they stop being trusted.
        var verified: [Digest: ContinuousClock.Instant] = [:]
        var failures: [String: Failures] = [:]
    }

    private let state = Mutex(State())
    /// Bounds on the tables, so that many clients or many passwords cannot grow them forever.
    private static let maximumCacheEntries = 1024
    private static let maximumTrackedClients = 16384
    /// A client's failures are forgotten after this long without one.
    private static let failureMemory: Duration = .seconds(15 * 60)

    public convenience init(htpasswd path: String, realm: String = "berth-registry", limits: Limits = Limits()) throws(RegistryError) {
        let text: String
        do {
            text = try FileSystem.readString(path)
        } catch {
            throw RegistryError.storage("cannot read htpasswd file \(path): \(error)")
        }
        self.init(htpasswdText: text, realm: realm, limits: limits)
    }

    public init(htpasswdText text: String, realm: String = "berth-registry", limits: Limits = Limits()) {
        var hashes: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            let entry = line.trimmingSpaces
            guard !entry.isEmpty, !entry.hasPrefix("#"), let colon = entry.firstIndex(of: ":") else { continue }
            hashes[String(entry[..<colon])] = String(entry[entry.index(after: colon)...])
        }
        self.hashes = hashes
        self.realm = realm
        self.limits = limits
        dummyHash = Self.makeDummyHash(cost: Self.usualCost(hashes.values))
        var generator = SystemRandomNumberGenerator()
        cacheKey = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        pool = NIOThreadPool(numberOfThreads: max(1, limits.hashingThreads))
        pool.start()
    }

    deinit {
        pool.shutdownGracefully { _ in }
    }

    /// Checks `user` and `password` for a client (its address: what failures are counted by).
    public func verify(user: String, password: String, client: String) async -> Outcome {
        let key = cacheDigest(user: user, password: password)
        let now = ContinuousClock.now
        // A client that was verified goes on without hashing, even while others at its
        // address are being made to wait.
        let waitFor: Duration? = state.withLock { state in
            if let until = state.verified[key] {
                if until > now { return .zero }
                state.verified[key] = nil
            }
            if let blocked = state.failures[client]?.blockedUntil, blocked > now { return blocked - now }
            return nil
        }
        if let waitFor {
            return waitFor == .zero ? .accepted : .throttled(retryAfter: waitFor)
        }
        // Unknown users and unusable entries cost the same bcrypt as a wrong password.
        let stored = hashes[user].flatMap { Self.isBcrypt($0) ? $0 : nil }
        let hash = stored ?? dummyHash
        let capacity = max(1, limits.hashingThreads) + max(0, limits.hashingQueue)
        guard hashing.wrappingAdd(1, ordering: .relaxed).newValue <= capacity else {
            hashing.wrappingSubtract(1, ordering: .relaxed)
            return .throttled(retryAfter: .seconds(1))
        }
        let matches: Bool
        do {
            matches = try await pool.runIfActive { Self.bcryptMatches(password: password, hash: hash) }
        } catch {
            matches = false  // cancelled (client gone) or the pool is shutting down
        }
        hashing.wrappingSubtract(1, ordering: .relaxed)
        let accepted = matches && stored != nil
        record(accepted, key: key, client: client)
        return accepted ? .accepted : .rejected
    }

    /// Checks an `Authorization` header; throws UNAUTHORIZED with the challenge otherwise, or
    /// TOOMANYREQUESTS with `Retry-After` when the client must wait.
    func check(_ header: String?, client: String) async throws(RegistryError) {
        var outcome = Outcome.rejected
        if let header, header.lowercased().hasPrefix("basic "),
           let decoded = Data(base64Encoded: String(header.dropFirst(6).trimmingSpaces)),
           let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":") {
            outcome = await verify(user: String(text[..<colon]), password: String(text[text.index(after: colon)...]), client: client)
        }
        switch outcome {
        case .accepted:
            return
        case .rejected:
            var error = RegistryError(.unauthorized, "authentication required")
            error.headers.add(name: "WWW-Authenticate", value: "Basic realm=\"\(realm)\"")
            throw error
        case .throttled(let retryAfter):
            var error = RegistryError(.tooManyRequests, "too many failed authentication attempts: retry later")
            error.headers.add(name: "Retry-After", value: "\(max(1, retryAfter.components.seconds + (retryAfter.components.attoseconds > 0 ? 1 : 0)))")
            throw error
        }
    }

    /// The key failures are counted under: the client's IP address, or its /64 for IPv6,
    /// which one host usually holds whole.
    static func clientKey(_ address: SocketAddress?) -> String {
        switch address {
        case .v4:
            return address?.ipAddress ?? "local"
        case .v6(let a):
            var sin6 = a.address.sin6_addr
            let prefix = withUnsafeBytes(of: &sin6) { Array($0.prefix(8)) }
            return prefix.map { String($0, radix: 16) }.joined(separator: ":") + "::/64"
        default:
            return "local"
        }
    }

    private func record(_ accepted: Bool, key: Digest, client: String) {
        let now = ContinuousClock.now
        state.withLock { state in
            if accepted {
                state.failures[client] = nil
                if state.verified.count >= Self.maximumCacheEntries {
                    state.verified = state.verified.filter { $0.value > now }
                    if state.verified.count >= Self.maximumCacheEntries, let oldest = state.verified.min(by: { $0.value < $1.value }) {
                        state.verified[oldest.key] = nil
                    }
                }
                state.verified[key] = now + limits.cacheLifetime
                return
            }
            var failures = state.failures[client] ?? Failures(count: 0, last: now)
            if now - failures.last > Self.failureMemory { failures.count = 0 }
            failures.count += 1
            failures.last = now
            let excess = failures.count - limits.failuresBeforeBackoff
            if excess >= 0 {
                let wait = limits.backoff * (1 << min(excess, 20))
                failures.blockedUntil = now + min(wait, limits.maximumBackoff)
            }
            if state.failures[client] == nil, state.failures.count >= Self.maximumTrackedClients {
                state.failures = state.failures.filter { now - $0.value.last <= Self.failureMemory }
                if state.failures.count >= Self.maximumTrackedClients, let oldest = state.failures.min(by: { $0.value.last < $1.value.last }) {
                    state.failures[oldest.key] = nil
                }
            }
            state.failures[client] = failures
        }
    }

    /// HMAC-SHA256 (RFC 2104) of user and password under the process's random key.
    private func cacheDigest(user: String, password: String) -> Digest {
        let message = Array(user.utf8) + [0] + Array(password.utf8)
        let inner = SHA256.hash(cacheKey.map { $0 ^ 0x36 } + [UInt8](repeating: 0x36, count: 32) + message)
        return Digest.of(cacheKey.map { $0 ^ 0x5c } + [UInt8](repeating: 0x5c, count: 32) + inner)
    }

    private static func isBcrypt(_ hash: String) -> Bool {
        hash.hasPrefix("$2y$") || hash.hasPrefix("$2b$") || hash.hasPrefix("$2a$")
    }

    /// The cost most entries use (the highest among equals); htpasswd's default when none.
    static func usualCost(_ hashes: some Sequence<String>) -> Int {
        var counts: [Int: Int] = [:]
        for hash in hashes where isBcrypt(hash) {
            let parts = hash.split(separator: "$", omittingEmptySubsequences: true)
            if parts.count >= 2, let cost = Int(parts[1]), (4...31).contains(cost) { counts[cost, default: 0] += 1 }
        }
        return counts.max { ($0.value, $0.key) < ($1.value, $1.key) }?.key ?? 5
    }

    /// A bcrypt hash of a random password that nobody knows.
    static func makeDummyHash(cost: Int) -> String {
        var setting = [CChar](repeating: 0, count: Int(CRYPT_GENSALT_OUTPUT_SIZE))
        guard crypt_gensalt_rn("$2b$", UInt(cost), nil, 0, &setting, Int32(setting.count)) != nil else {
            // Not expected with libxcrypt; a fixed salt still costs the same.
            return "$2b$\(cost < 10 ? "0" : "")\(cost)$" + String(repeating: "a", count: 53)
        }
        let salt = String(decoding: setting.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var generator = SystemRandomNumberGenerator()
        let password = (0..<32).map { _ in String(UInt8.random(in: 0...255, using: &generator), radix: 16) }.joined()
        let data = UnsafeMutablePointer<crypt_data>.allocate(capacity: 1)
        defer { data.deallocate() }
        UnsafeMutableRawPointer(data).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<crypt_data>.size)
        guard let result = crypt_r(password, salt, data) else { return salt }
        return String(cString: result)
    }

    /// crypt_r re-hashes the password with the hash's own salt and cost; equal output means a match.
    static func bcryptMatches(password: String, hash: String) -> Bool {
        let data = UnsafeMutablePointer<crypt_data>.allocate(capacity: 1)
        defer { data.deallocate() }
        UnsafeMutableRawPointer(data).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<crypt_data>.size)
        guard let result = crypt_r(password, hash, data) else { return false }
        let computed = String(cString: result)
        // A failed crypt_r returns a string starting with "*".
        return !computed.hasPrefix("*") && constantTimeEqual(Array(computed.utf8), Array(hash.utf8))
    }

    private static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in a.indices { difference |= a[i] ^ b[i] }
        return difference == 0
    }
}
