import BerthClient
import BerthOS
import FoundationEssentials
import Glibc

/// Registry credentials as the docker CLI keeps them: `auths` in `$DOCKER_CONFIG/config.json`
/// (default `~/.docker`), base64 `user:password` per registry, Docker Hub under
/// `https://index.docker.io/v1/`. The daemon gets them per request in `X-Registry-Auth`.
struct CredentialStore {
    static let dockerHubKey = "https://index.docker.io/v1/"
    let path: String

    init(environment: [String: String]) {
        let dir = environment["DOCKER_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (environment["HOME"] ?? "/root") + "/.docker"
        path = dir + "/config.json"
    }

    /// The config.json key of the registry an image or login server names.
    static func key(forServer server: String) -> String {
        var host = server
        for prefix in ["https://", "http://"] where host.hasPrefix(prefix) { host = String(host.dropFirst(prefix.count)) }
        if let slash = host.firstIndex(of: "/") { host = String(host[..<slash]) }
        return ["", "docker.io", "index.docker.io", "registry-1.docker.io"].contains(host) ? dockerHubKey : host
    }

    static func key(forRepository repository: String) -> String {
        guard let slash = repository.firstIndex(of: "/") else { return dockerHubKey }
        let first = repository[..<slash]
        return first.contains(".") || first.contains(":") || first == "localhost" ? key(forServer: String(first)) : dockerHubKey
    }

    func read() -> JSON {
        guard let bytes = try? FileSystem.readBytes(path), let json = try? JSON.parse(bytes), json.object != nil else {
            return .object(JSONObject())
        }
        return json
    }

    /// The `X-Registry-Auth` header for a repository: its stored credentials, or `{}`.
    func header(forRepository repository: String) -> (String, String) {
        let key = Self.key(forRepository: repository)
        let entry = read()["auths"]?[key]
        guard let encoded = entry?["auth"]?.string,
              let decoded = Data(base64Encoded: encoded).map({ String(decoding: $0, as: UTF8.self) }),
              let colon = decoded.firstIndex(of: ":") else { return ("X-Registry-Auth", "e30=") }
        var fields: [(String, JSON)] = [("username", .string(String(decoded[..<colon]))),
                                        ("password", .string(String(decoded[decoded.index(after: colon)...]))),
                                        ("serveraddress", .string(key))]
        if let token = entry?["identitytoken"]?.string, !token.isEmpty { fields.append(("identitytoken", .string(token))) }
        let body = JSON.object(fields)
        return ("X-Registry-Auth", Self.base64URL(body.bytes))
    }

    /// With an identity token (a refresh token from the registry's token service) the
    /// password is not kept, as the docker CLI does.
    func store(_ key: String, username: String, password: String, identityToken: String = "") throws {
        var config = read().object ?? JSONObject()
        var auths = config["auths"]?.object ?? JSONObject()
        let secret = identityToken.isEmpty ? password : ""
        var entry: [(String, JSON)] = [("auth", .string(Data("\(username):\(secret)".utf8).base64EncodedString()))]
        if !identityToken.isEmpty { entry.append(("identitytoken", .string(identityToken))) }
        auths[key] = .object(entry)
        config["auths"] = .object(auths)
        try write(config)
    }

    /// Returns false when there was nothing stored for `key`.
    func remove(_ key: String) throws -> Bool {
        var config = read().object ?? JSONObject()
        guard var auths = config["auths"]?.object, auths[key] != nil else { return false }
        auths[key] = nil
        config["auths"] = .object(auths)
        try write(config)
        return true
    }

    private func write(_ config: JSONObject) throws {
        let dir = String(path[..<path.lastIndex(of: "/")!])
        do {
            try FileSystem.makeDirectories(dir, mode: 0o700)
            try FileSystem.writeAtomically(path, Array((JSON.object(config).indented("\t") + "\n").utf8), mode: 0o600, durable: true)
        } catch {
            throw CLIError("saving credentials to \(path): \(error.message)")
        }
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        String(Data(bytes).base64EncodedString().map { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 })
    }
}

enum LoginCommands {
    static let all: [Command] = [login, logout]

    static let login = Command(
        name: "login", usage: "berth login [OPTIONS] [SERVER]", summary: "Log in to a registry",
        options: [Option("username", "u", .value), Option("password", "p", .value), Option("password-stdin")],
        maxArgs: 1
    ) { cli, args in
        let server = args.positionals.first ?? CredentialStore.dockerHubKey
        guard let username = args.value("username"), !username.isEmpty else {
            throw CLIError("Error: Cannot perform an interactive login from a non TTY device: pass --username")
        }
        var password = args.value("password") ?? ""
        if args.flag("password-stdin") {
            guard args.value("password") == nil else { throw CLIError("--password and --password-stdin are mutually exclusive") }
            password = readLine(strippingNewline: true) ?? ""
        } else if args.value("password") != nil {
            cli.err("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n")
        }
        guard !password.isEmpty else { throw CLIError("Error: Password Required") }
        let key = CredentialStore.key(forServer: server)
        let body = JSON.object([("username", .string(username)), ("password", .string(password)),
                                ("serveraddress", .string(key))])
        let answer = try cli.client().json("POST", "/auth", json: body)
        try CredentialStore(environment: cli.environment).store(key, username: username, password: password,
                                                                 identityToken: answer["IdentityToken"]?.string ?? "")
        cli.out((answer["Status"]?.string ?? "Login Succeeded") + "\n")
        return 0
    }

    static let logout = Command(
        name: "logout", usage: "berth logout [SERVER]", summary: "Log out from a registry", maxArgs: 1
    ) { cli, args in
        let key = CredentialStore.key(forServer: args.positionals.first ?? CredentialStore.dockerHubKey)
        if try CredentialStore(environment: cli.environment).remove(key) {
            cli.out("Removing login credentials for \(key)\n")
        } else {
            cli.out("Not logged in to \(key)\n")
        }
        return 0
    }
}
