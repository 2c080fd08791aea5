// berth-registry: the registry server behind `berth registry serve`, and its garbage collector.
import BerthHTTP
import BerthOS
import BerthRegistry
import Glibc

let usage = """
    Usage:
      berth-registry serve [--addr HOST:PORT] --root DIR [--htpasswd FILE] [--tls-cert FILE --tls-key FILE] [LIMITS]
      berth-registry garbage-collect --root DIR [--dry-run]
      berth-registry serve --help

    """

let serveHelp = """
    Usage: berth-registry serve [OPTIONS]   (also: berth registry serve [OPTIONS])

    Serves the distribution API from a store directory. The store is readable only by the
    user running the registry (0700/0600; an older store is tightened at start), and is locked
    while served: garbage-collect refuses to run until the server stops.

    Options:
      --addr HOST:PORT                 Listen address (default 127.0.0.1:5000; :PORT for all)
      --root DIR                       The store directory (required)
      --htpasswd FILE                  Require basic auth against bcrypt htpasswd entries
      --tls-cert FILE, --tls-key FILE  Serve HTTPS with this PEM certificate chain and key

    Limits against hostile clients (a DURATION is 500ms, 30s, 10m, 1h; 0 turns a limit off):
      --idle-timeout DURATION          Close a kept-alive connection idle this long (default 60s)
      --read-header-timeout DURATION   Close a connection whose request head takes longer
                                       (default 30s; from the connection's start or the
                                       request's first byte)
      --tls-handshake-timeout DURATION Close a connection whose TLS handshake takes longer
                                       (default 10s)
      --max-connections N              Serve at most N connections; at the cap the one idle
                                       longest is closed for a new one (default: half the
                                       open-files limit, at most 4096; that limit is raised
                                       to its hard maximum at start)
      --upload-purging-age DURATION    Remove uploads nothing has written to for this long
                                       (distribution's uploadpurging; default 1h)
      --upload-purging-interval DURATION
                                       How often to look for them (default 10m)
      --auth-failures N                Wrong passwords a client address may send in a row
                                       before it must wait (default 5)
      --auth-backoff DURATION          The first wait; it doubles with each further failure,
                                       up to 1m, and the client gets 429 TOOMANYREQUESTS
                                       meanwhile (default 1s)

    """

func fail(_ message: String) -> Never {
    writeStderr("berth-registry: \(message)\n")
    exit(2)
}

func writeStderr(_ text: String) {
    let bytes = Array(text.utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

/// `--name value` and `--name=value` options, and `--dry-run`-style flags.
func parseOptions(_ args: ArraySlice<String>, values: Set<String>, flags: Set<String>) -> [String: String] {
    var options: [String: String] = [:]
    var rest = args
    while let arg = rest.popFirst() {
        var name = arg
        var value: String?
        if let eq = arg.firstIndex(of: "=") {
            name = String(arg[..<eq])
            value = String(arg[arg.index(after: eq)...])
        }
        if flags.contains(name), value == nil {
            options[name] = "true"
        } else if values.contains(name) {
            guard let v = value ?? rest.popFirst() else { fail("\(name) needs a value") }
            options[name] = v
        } else {
            fail("unknown option \(arg)\n\(usage)")
        }
    }
    return options
}

/// Go's duration form, as distribution's configuration: `1h`, `10m`, `30s`, `500ms`, `1m30s`;
/// `0` is none (nil).
func parseDuration(_ name: String, _ text: String) -> Duration? {
    if text == "0" { return nil }
    let units: [(String, Duration)] = [("ms", .milliseconds(1)), ("h", .seconds(3600)), ("m", .seconds(60)), ("s", .seconds(1))]
    var rest = Substring(text)
    var total = Duration.zero
    while !rest.isEmpty {
        let digits = rest.prefix { $0.isASCII && $0.isNumber }
        rest = rest.dropFirst(digits.count)
        guard let value = Int(digits), let (unit, size) = units.first(where: { rest.hasPrefix($0.0) }) else {
            fail("invalid \(name) \(text): a duration such as 500ms, 30s, 10m or 1h is expected")
        }
        rest = rest.dropFirst(unit.count)
        total += size * value
    }
    guard total > .zero else { fail("invalid \(name) \(text)") }
    return total
}

func parseCount(_ name: String, _ text: String) -> Int {
    guard let value = Int(text), value >= 0 else { fail("invalid \(name) \(text): a number is expected") }
    return value
}

/// Raises the soft open-files limit to the hard one: every connection is a file, and a
/// default of 256 or 1024 is soon reached. Returns the limit in force.
func raiseOpenFilesLimit() -> Int {
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
    if limit.rlim_cur < limit.rlim_max {
        var raised = limit
        raised.rlim_cur = limit.rlim_max
        if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
    }
    return Int(clamping: limit.rlim_cur)  // RLIM_INFINITY is the largest value
}

/// `127.0.0.1:5000`, `:5000` (all addresses) or `[::1]:5000`.
func parseAddress(_ text: String) -> ListenAddress {
    do {
        return try ListenAddress.parse("tcp://" + text)
    } catch {
        fail("invalid --addr \(text): \(error)")
    }
}

/// One line per request on stderr: `time level message key=value...`.
let log = ServerLog(minimumLevel: .info) { level, message, fields in
    let line = ([Timestamp.now(), level.description, message] + fields.map { "\($0.key)=\($0.value)" }).joined(separator: " ")
    writeStderr(line + "\n")
}

let arguments = CommandLine.arguments.dropFirst()
switch arguments.first {
case "serve":
    let options = parseOptions(
        arguments.dropFirst(),
        values: [
            "--addr", "--root", "--htpasswd", "--tls-cert", "--tls-key", "--idle-timeout", "--read-header-timeout",
            "--tls-handshake-timeout", "--max-connections", "--upload-purging-age", "--upload-purging-interval",
            "--auth-failures", "--auth-backoff",
        ],
        flags: ["--help", "-h"])
    if options["--help"] != nil || options["-h"] != nil {
        print(serveHelp, terminator: "")
        exit(0)
    }
    guard let root = options["--root"] else { fail("serve needs --root DIR") }
    let address = parseAddress(options["--addr"] ?? "127.0.0.1:5000")
    var configuration = RegistryServer.Configuration(
        root: root, htpasswd: options["--htpasswd"], tlsCertificate: options["--tls-cert"], tlsKey: options["--tls-key"])
    let openFiles = raiseOpenFilesLimit()
    configuration.maximumConnections = max(16, min(4096, openFiles / 2))
    if let text = options["--idle-timeout"] { configuration.idleTimeout = parseDuration("--idle-timeout", text) }
    if let text = options["--read-header-timeout"] { configuration.requestHeadTimeout = parseDuration("--read-header-timeout", text) }
    if let text = options["--tls-handshake-timeout"] { configuration.tlsHandshakeTimeout = parseDuration("--tls-handshake-timeout", text) }
    if let text = options["--max-connections"] {
        let cap = parseCount("--max-connections", text)
        configuration.maximumConnections = cap == 0 ? nil : cap
    }
    if let text = options["--upload-purging-age"] {
        guard let age = parseDuration("--upload-purging-age", text) else { fail("--upload-purging-age cannot be 0") }
        configuration.uploadPurgingAge = age
    }
    if let text = options["--upload-purging-interval"] {
        guard let interval = parseDuration("--upload-purging-interval", text) else { fail("--upload-purging-interval cannot be 0") }
        configuration.uploadPurgingInterval = interval
    }
    if let text = options["--auth-failures"] { configuration.authLimits.failuresBeforeBackoff = parseCount("--auth-failures", text) }
    if let text = options["--auth-backoff"] {
        guard let backoff = parseDuration("--auth-backoff", text) else { fail("--auth-backoff cannot be 0") }
        configuration.authLimits.backoff = backoff
    }
    // Whatever the store or a library creates is the registry user's alone.
    umask(0o077)
    signal(SIGPIPE, SIG_IGN)
    let signals = SignalWaiter([SIGTERM, SIGINT])
    do {
        let server = try RegistryServer(configuration, log: log)
        let bound = try await server.listen(address)
        log.info("serving the registry", [
            ("addr", "\(bound)"), ("root", root), ("open_files", "\(openFiles)"),
            ("max_connections", configuration.maximumConnections.map { "\($0)" } ?? "none"),
        ])
        // Stops on SIGTERM/SIGINT once requests in flight are answered. Every stored file is
        // complete at any moment (renamed into place); uploads cut short are what
        // garbage-collect expires.
        let signal = await signals.next()
        log.info("shutting down", [("signal", "\(signal)")])
        await server.shutdown()
    } catch let error as RegistryError {
        fail(error.message)
    } catch {
        fail("\(error)")
    }
case "garbage-collect":
    let options = parseOptions(arguments.dropFirst(), values: ["--root"], flags: ["--dry-run"])
    guard let root = options["--root"] else { fail("garbage-collect needs --root DIR") }
    let dryRun = options["--dry-run"] != nil
    umask(0o077)
    do throws(RegistryError) {
        let report = try GarbageCollector(store: try RegistryStore(root: root)).collect(dryRun: dryRun)
        let verb = dryRun ? "would remove" : "removed"
        for digest in report.removedBlobs { print("\(verb) blob \(digest)") }
        for id in report.removedUploads { print("\(verb) upload \(id)") }
        print("\(report.removedBlobs.count) blobs (\(report.freedBytes) bytes) and \(report.removedUploads.count) uploads \(verb == "removed" ? "removed" : "to remove")")
    } catch {
        fail(error.message)
    }
case "-h", "--help", "help":
    print(usage, terminator: "")
default:
    writeStderr(usage)
    exit(2)
}
