import BerthEngine
import BerthNetwork
import FoundationEssentials

/// berthd's settings after flags and the configuration file are merged (flags win).
struct DaemonOptions: Sendable {
    var hosts: [String] = []
    var dataRoot = "/var/lib/berth"
    var execRoot = "/run/berth"
    var debug = false
    /// The socket's group; nil means "berth if that group exists".
    var group: String?
    var pidFile: String?
    var logFormat = "text"
    var logLevel = "info"
    var insecureTCP = false
    var configFile: String?
    /// berth-runtime and berth-monitor; nil means "beside the berthd executable".
    var runtimePath: String?
    var monitorPath: String?
    /// The static PID 1 for `--init` (dockerd's `init-path`); nil means berth-init beside berthd.
    var initPath: String?
    /// Registries reached over plain HTTP too, and mirrors tried first for Docker Hub.
    var insecureRegistries: [String] = []
    var registryMirrors: [String] = []
    /// Per-registry CA certificates: `<dir>/<host[:port]>/*.crt` (dockerd's /etc/docker/certs.d).
    var registryCertsDirectory = "/etc/berth/certs.d"
    /// The default bridge, `--bip`, `--icc`, `--ip-forward`, the nftables table.
    var network = NetworkOptions()

    static let defaultConfigFile = "/etc/berth/daemon.json"

    static let usage = """
        Usage: berthd [OPTIONS]

        Berth daemon: serves the Docker Engine API.

        Options:
          -H, --host list          daemon socket(s) to listen on: unix:///path or tcp://host:port
                                   (default unix:///run/berth/berth.sock); repeatable
              --data-root string   root of persistent state (default /var/lib/berth)
              --exec-root string   root of runtime state (default /run/berth)
              --config-file string daemon.json-style configuration (default /etc/berth/daemon.json)
          -D, --debug              debug logging
          -G, --group string       group given access to unix sockets (default berth, if it exists)
          -p, --pidfile string     pid file (default <exec-root>/berthd.pid)
              --log-format string  text or json (default text)
          -l, --log-level string   debug, info, warn or error (default info)
              --insecure-tcp       serve tcp:// hosts without TLS (anyone reaching the port is root here)
              --runtime-path string  berth-runtime binary (default: beside berthd)
              --monitor-path string  berth-monitor binary (default: beside berthd)
              --init-path string   static init for --init containers (default: berth-init beside berthd)
              --insecure-registry string  a registry (host[:port] or CIDR) reachable over plain HTTP; repeatable
              --registry-mirror string    a mirror URL tried before Docker Hub; repeatable
              --registry-certs-dir string CA certificates per registry: DIR/HOST[:PORT]/*.crt
                                   (default /etc/berth/certs.d)
          -b, --bridge string      the default bridge's interface, or none for no default bridge (default berth0)
              --bip string         the default bridge's address and prefix, e.g. 172.17.0.1/16 (default: a free
                                   subnet from 172.17-31.0.0/16, 192.168.0.0/16)
              --icc                inter-container traffic on the default bridge (default true)
              --ip-forward         turn on net.ipv4.ip_forward (default true)
              --firewall-table string  the nftables table berthd owns (default berth)
              --firewall-backend string  nftables, iptables, or auto: nftables where the kernel has
                                   nf_tables (default auto)
              --resolv-conf string the host's resolver configuration that containers inherit and the
                                   embedded DNS forwards to (default /etc/resolv.conf)
          -v, --version            print the version
          -h, --help               print this help

        """
}

struct UsageError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// dockerd's flag syntax: `--name value`, `--name=value`, `-H value`, booleans as `--debug`
/// or `--debug=false`; `--host` repeats.
struct DaemonFlags {
    enum Kind { case value, bool }

    private static let specs: [String: (name: String, kind: Kind)] = {
        let list: [([String], Kind)] = [
            (["host", "H"], .value), (["data-root"], .value), (["exec-root"], .value), (["config-file"], .value),
            (["debug", "D"], .bool), (["group", "G"], .value), (["pidfile", "p"], .value), (["log-format"], .value),
            (["log-level", "l"], .value), (["insecure-tcp"], .bool), (["tls"], .bool), (["tlsverify"], .bool),
            (["tlscacert"], .value), (["tlscert"], .value), (["tlskey"], .value), (["help", "h"], .bool),
            (["version", "v"], .bool), (["runtime-path"], .value), (["monitor-path"], .value), (["init-path"], .value),
            (["insecure-registry"], .value), (["registry-mirror"], .value), (["registry-certs-dir"], .value), (["bridge", "b"], .value), (["bip"], .value),
            (["icc"], .bool), (["ip-forward"], .bool), (["firewall-table"], .value), (["resolv-conf"], .value), (["firewall-backend"], .value),
        ]
        var map: [String: (String, Kind)] = [:]
        for (names, kind) in list { for n in names { map[n] = (names[0], kind) } }
        return map
    }()

    private(set) var values: [String: [String]] = [:]

    init(_ arguments: [String]) throws(UsageError) {
        var iterator = arguments.makeIterator()
        while let arg = iterator.next() {
            guard arg.hasPrefix("-"), arg != "-" else { throw UsageError(message: "unexpected argument \(arg): berthd takes only flags") }
            let body = arg.drop { $0 == "-" }
            var name = String(body)
            var inline: String?
            if let eq = body.firstIndex(of: "=") {
                name = String(body[..<eq])
                inline = String(body[body.index(after: eq)...])
            }
            guard let spec = Self.specs[name] else { throw UsageError(message: "unknown flag: \(arg)") }
            switch spec.kind {
            case .value:
                guard let value = inline ?? iterator.next() else { throw UsageError(message: "flag needs an argument: \(arg)") }
                values[spec.name, default: []].append(value)
            case .bool:
                switch inline?.lowercased() {
                case nil, "true", "1": values[spec.name] = ["true"]
                case "false", "0": values[spec.name] = ["false"]
                default: throw UsageError(message: "invalid boolean value \"\(inline!)\" for \(arg)")
                }
            }
        }
    }

    func bool(_ name: String) -> Bool? { values[name]?.last.map { $0 == "true" } }
    func string(_ name: String) -> String? { values[name]?.last }
    func strings(_ name: String) -> [String] { values[name] ?? [] }
    func has(_ name: String) -> Bool { values[name] != nil }
}

/// The keys of daemon.json that berthd reads (dockerd's names).
struct DaemonConfigFile: Decodable {
    var hosts: [String]?
    var dataRoot: String?
    var execRoot: String?
    var debug: Bool?
    var group: String?
    var pidFile: String?
    var logFormat: String?
    var logLevel: String?
    var tls: Bool?
    var tlsVerify: Bool?
    var initPath: String?
    var insecureRegistries: [String]?
    var registryMirrors: [String]?
    var bridge: String?
    var bip: String?
    var icc: Bool?
    var ipForward: Bool?
    var firewallTable: String?
    var firewallBackend: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case hosts, dataRoot = "data-root", execRoot = "exec-root", debug, group, pidFile = "pidfile"
        case logFormat = "log-format", logLevel = "log-level", tls, tlsVerify = "tlsverify", initPath = "init-path"
        case insecureRegistries = "insecure-registries", registryMirrors = "registry-mirrors"
        case bridge, bip, icc, ipForward = "ip-forward", firewallTable = "firewall-table", firewallBackend = "firewall-backend"
    }

    /// Keys present in the file, to warn about the ones berthd ignores.
    struct Keys: Decodable {
        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        let names: [String]

        init(from decoder: any Decoder) throws {
            names = try decoder.container(keyedBy: Key.self).allKeys.map(\.stringValue)
        }
    }
}

extension DaemonOptions {
    /// Merges `flags` over the configuration file. Returns the options and the file's keys
    /// that mean nothing to berthd (logged as warnings once logging is set up).
    static func load(_ flags: DaemonFlags) throws(UsageError) -> (DaemonOptions, ignoredKeys: [String]) {
        var options = DaemonOptions()
        var ignored: [String] = []
        let explicitFile = flags.string("config-file")
        let path = explicitFile ?? defaultConfigFile
        if let text = DaemonFiles.read(path) {
            options.configFile = path
            let data = Data(text.utf8)
            let file: DaemonConfigFile
            do {
                file = try JSONDecoder().decode(DaemonConfigFile.self, from: data)
                let known = Set(DaemonConfigFile.CodingKeys.allCases.map(\.rawValue))
                ignored = try JSONDecoder().decode(DaemonConfigFile.Keys.self, from: data).names.filter { !known.contains($0) }.sorted()
            } catch {
                throw UsageError(message: "invalid configuration file \(path): \(error)")
            }
            if file.tls == true || file.tlsVerify == true { throw UsageError(message: "\(path): TLS is not implemented yet") }
            if let v = file.hosts { options.hosts = v }
            if let v = file.dataRoot { options.dataRoot = v }
            if let v = file.execRoot { options.execRoot = v }
            if let v = file.debug { options.debug = v }
            if let v = file.group { options.group = v }
            if let v = file.pidFile { options.pidFile = v }
            if let v = file.logFormat { options.logFormat = v }
            if let v = file.logLevel { options.logLevel = v }
            if let v = file.initPath { options.initPath = v }
            if let v = file.insecureRegistries { options.insecureRegistries = v }
            if let v = file.registryMirrors { options.registryMirrors = v }
            if let v = file.bridge { options.network.bridge = v }
            if let v = file.bip { options.network.bridgeIP = try parseBridgeIP(v) }
            if let v = file.icc { options.network.interContainer = v }
            if let v = file.ipForward { options.network.ipForward = v }
            if let v = file.firewallTable { options.network.firewallTable = v }
            if let v = file.firewallBackend { options.network.firewallBackend = v }
        } else if let explicitFile {
            throw UsageError(message: "cannot read configuration file \(explicitFile)")
        }

        for name in ["tls", "tlsverify", "tlscacert", "tlscert", "tlskey"] where flags.has(name) {
            throw UsageError(message: "--\(name): TLS is not implemented yet; use a unix socket, or --insecure-tcp on a trusted network")
        }
        if flags.has("host") { options.hosts = flags.strings("host") }
        if let v = flags.string("data-root") { options.dataRoot = v }
        if let v = flags.string("exec-root") { options.execRoot = v }
        if let v = flags.bool("debug") { options.debug = v }
        if let v = flags.string("group") { options.group = v }
        if let v = flags.string("pidfile") { options.pidFile = v }
        if let v = flags.string("log-format") { options.logFormat = v }
        if let v = flags.string("log-level") { options.logLevel = v }
        if let v = flags.bool("insecure-tcp") { options.insecureTCP = v }
        if let v = flags.string("runtime-path") { options.runtimePath = v }
        if let v = flags.string("monitor-path") { options.monitorPath = v }
        if let v = flags.string("init-path") { options.initPath = v }
        options.insecureRegistries += flags.strings("insecure-registry")
        options.registryMirrors += flags.strings("registry-mirror")
        if let v = flags.string("registry-certs-dir") { options.registryCertsDirectory = v }
        if let v = flags.string("bridge") { options.network.bridge = v }
        if let v = flags.string("bip") { options.network.bridgeIP = try parseBridgeIP(v) }
        if let v = flags.bool("icc") { options.network.interContainer = v }
        if let v = flags.bool("ip-forward") { options.network.ipForward = v }
        if let v = flags.string("firewall-table") { options.network.firewallTable = v }
        if let v = flags.string("firewall-backend") {
            guard ["auto", "nftables", "iptables"].contains(v) else {
                throw UsageError(message: "invalid --firewall-backend \(v): want nftables, iptables or auto")
            }
            options.network.firewallBackend = v
        }
        if let v = flags.string("resolv-conf") { options.network.resolvConf = v }
        if options.network.bridge != "none" {
            do { try NetworkDefinition.validateInterfaceName(options.network.bridge) } catch {
                throw UsageError(message: "--bridge: \(error.message)")
            }
        }
        guard !options.network.firewallTable.isEmpty,
              options.network.firewallTable.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else {
            throw UsageError(message: "invalid firewall table name \(options.network.firewallTable): letters, digits, _ and - only")
        }

        guard ["text", "json"].contains(options.logFormat) else {
            throw UsageError(message: "invalid log format \(options.logFormat): want text or json")
        }
        guard ["debug", "info", "warn", "warning", "error"].contains(options.logLevel) else {
            throw UsageError(message: "invalid log level \(options.logLevel): want debug, info, warn or error")
        }
        if options.debug { options.logLevel = "debug" }
        for (name, path) in [("data-root", options.dataRoot), ("exec-root", options.execRoot)] where !path.hasPrefix("/") {
            throw UsageError(message: "--\(name) must be an absolute path, got \(path)")
        }
        return (options, ignored)
    }

    /// `--bip`: the gateway's address with the prefix (`172.17.0.1/16`).
    static func parseBridgeIP(_ text: String) throws(UsageError) -> IPv4Subnet {
        guard let subnet = IPv4Subnet(text), subnet.prefix <= 30,
              subnet.address != subnet.network, subnet.address != subnet.broadcast else {
            throw UsageError(message: "invalid --bip \(text): want the bridge's address and prefix, e.g. 172.17.0.1/16")
        }
        return subnet
    }
}
