import BerthOCI
import BerthOS
import CCrypt
import FoundationEssentials
import Synchronization

/// Basic authentication against an htpasswd file of bcrypt hashes (`user:$2y$...`), as
/// distribution's `htpasswd` access controller: every request needs valid credentials, and a
/// 401 carries `WWW-Authenticate: Basic realm=...`.
public final class Authenticator: Sendable {
    public let realm: String
    private let hashes: [String: String]
    /// Credentials already checked, by a hash of user and password: bcrypt is slow on purpose,
    /// and a pull sends credentials with every request.
    private let verified = Mutex<Set<Digest>>([])

    public convenience init(htpasswd path: String, realm: String = "berth-registry") throws {
        let text: String
        do {
            text = try FileSystem.readString(path)
        } catch {
            throw RegistryError.storage("cannot read htpasswd file \(path): \(error)")
        }
        self.init(htpasswdText: text, realm: realm)
    }

    public init(htpasswdText text: String, realm: String = "berth-registry") {
        var hashes: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            let entry = line.trimmingSpaces
            guard !entry.isEmpty, !entry.hasPrefix("#"), let colon = entry.firstIndex(of: ":") else { continue }
            hashes[String(entry[..<colon])] = String(entry[entry.index(after: colon)...])
        }
        self.hashes = hashes
        self.realm = realm
    }

    /// True when `password` is the user's; only bcrypt hashes are accepted.
    public func verify(user: String, password: String) -> Bool {
        guard let hash = hashes[user], hash.hasPrefix("$2y$") || hash.hasPrefix("$2b$") || hash.hasPrefix("$2a$") else { return false }
        let key = Digest.of(Array("\(user):\(password)".utf8) + [0] + Array(hash.utf8))
        if verified.withLock({ $0.contains(key) }) { return true }
        guard Self.bcryptMatches(password: password, hash: hash) else { return false }
        verified.withLock { _ = $0.insert(key) }
        return true
    }

    /// Checks an `Authorization` header; throws UNAUTHORIZED with the challenge otherwise.
    func check(_ header: String?) throws(RegistryError) {
        if let header, header.lowercased().hasPrefix("basic "),
           let decoded = Data(base64Encoded: String(header.dropFirst(6).trimmingSpaces)),
           let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":"),
           verify(user: String(text[..<colon]), password: String(text[text.index(after: colon)...])) {
            return
        }
        var error = RegistryError(.unauthorized, "authentication required")
        error.headers.add(name: "WWW-Authenticate", value: "Basic realm=\"\(realm)\"")
        throw error
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
