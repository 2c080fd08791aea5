import FoundationEssentials

/// A `WWW-Authenticate` challenge (RFC 7235 §4.1): a scheme and its parameters, as a
/// registry sends it: `Bearer realm="https://auth.example/token",service="registry",scope="repository:a:pull"`.
public struct AuthChallenge: Sendable, Equatable {
    /// Lower case: `basic` or `bearer`.
    public var scheme: String
    /// Parameter names in lower case.
    public var parameters: [String: String]

    public var realm: String? { parameters["realm"] }
    public var service: String? { parameters["service"] }
    public var scope: String? { parameters["scope"] }

    public init(scheme: String, parameters: [String: String]) {
        self.scheme = scheme
        self.parameters = parameters
    }

    /// The challenges in one header value; parameters are `name=token` or `name="quoted\"string"`.
    public static func parse(_ header: String) -> [AuthChallenge] {
        var out: [AuthChallenge] = []
        let chars = Array(header)
        var i = 0
        func skipSpace() { while i < chars.count && (chars[i] == " " || chars[i] == "\t") { i += 1 } }
        func token() -> String {
            let start = i
            while i < chars.count && !" \t,=\"".contains(chars[i]) { i += 1 }
            return String(chars[start..<i])
        }
        while i < chars.count {
            skipSpace()
            while i < chars.count && chars[i] == "," { i += 1; skipSpace() }
            let scheme = token()
            guard !scheme.isEmpty else { break }
            var params: [String: String] = [:]
            while true {
                skipSpace()
                let save = i
                let name = token()
                skipSpace()
                guard !name.isEmpty, i < chars.count, chars[i] == "=" else { i = save; break }
                i += 1
                skipSpace()
                var value = ""
                if i < chars.count && chars[i] == "\"" {
                    i += 1
                    while i < chars.count && chars[i] != "\"" {
                        if chars[i] == "\\" && i + 1 < chars.count { i += 1 }
                        value.append(chars[i])
                        i += 1
                    }
                    i += 1
                } else {
                    value = token()
                }
                params[name.lowercased()] = value
                skipSpace()
                guard i < chars.count, chars[i] == "," else { break }
                i += 1
            }
            out.append(AuthChallenge(scheme: scheme.lowercased(), parameters: params))
        }
        return out
    }
}

/// Credentials for one registry, as the docker CLI sends them in `X-Registry-Auth` (base64url
/// JSON, from its `~/.docker/config.json`) and in the body of `POST /auth`.
public struct RegistryCredentials: Sendable, Equatable, Codable {
    public var username: String
    public var password: String
    public var serverAddress: String
    /// An OAuth2 refresh token from an earlier login, used instead of the password.
    public var identityToken: String
    public var registryToken: String

    public init(username: String = "", password: String = "", serverAddress: String = "", identityToken: String = "",
                registryToken: String = "") {
        self.username = username; self.password = password; self.serverAddress = serverAddress
        self.identityToken = identityToken; self.registryToken = registryToken
    }

    enum CodingKeys: String, CodingKey {
        case username, password, serverAddress = "serveraddress", identityToken = "identitytoken", registryToken = "registrytoken"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        username = try c.decodeIfPresent(String.self, forKey: .username) ?? ""
        password = try c.decodeIfPresent(String.self, forKey: .password) ?? ""
        serverAddress = try c.decodeIfPresent(String.self, forKey: .serverAddress) ?? ""
        identityToken = try c.decodeIfPresent(String.self, forKey: .identityToken) ?? ""
        registryToken = try c.decodeIfPresent(String.self, forKey: .registryToken) ?? ""
    }

    /// No user, password or token: anonymous access.
    public var isEmpty: Bool { username.isEmpty && password.isEmpty && identityToken.isEmpty && registryToken.isEmpty }

    /// Decodes an `X-Registry-Auth` value (base64url, padded or not; standard base64 accepted
    /// too). An absent or empty header, or `{}`, is anonymous (nil).
    public static func decodeHeader(_ value: String?) throws(RegistryError) -> RegistryCredentials? {
        guard let value, !value.isEmpty else { return nil }
        var b64 = value.replacing("-", with: "+").replacing("_", with: "/")
        while b64.utf8.count % 4 != 0 { b64.append("=") }
        guard let data = Data(base64Encoded: b64),
              let creds = try? JSONDecoder().decode(RegistryCredentials.self, from: data) else {
            throw RegistryError(.invalid, "invalid X-Registry-Auth header: not base64url-encoded JSON")
        }
        return creds.isEmpty ? nil : creds
    }

    /// `Basic base64(user:password)`.
    var basicAuthorization: String {
        "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
    }
}
