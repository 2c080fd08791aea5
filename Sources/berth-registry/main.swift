// berth-registry: the registry server behind `berth registry serve`, and its garbage collector.
import BerthHTTP
import BerthOS
import BerthRegistry
import Glibc

let usage = """
    Usage:
      berth-registry serve [--addr HOST:PORT] --root DIR [--htpasswd FILE] [--tls-cert FILE --tls-key FILE]
      berth-registry garbage-collect --root DIR [--dry-run]

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
    let options = parseOptions(arguments.dropFirst(), values: ["--addr", "--root", "--htpasswd", "--tls-cert", "--tls-key"], flags: [])
    guard let root = options["--root"] else { fail("serve needs --root DIR") }
    let address = parseAddress(options["--addr"] ?? "127.0.0.1:5000")
    let configuration = RegistryServer.Configuration(
        root: root, htpasswd: options["--htpasswd"], tlsCertificate: options["--tls-cert"], tlsKey: options["--tls-key"])
    signal(SIGPIPE, SIG_IGN)
    let signals = SignalWaiter([SIGTERM, SIGINT])
    do {
        let server = try RegistryServer(configuration, log: log)
        let bound = try await server.listen(address)
        log.info("serving the registry", [("addr", "\(bound)"), ("root", root)])
        // Stops on SIGTERM/SIGINT once requests in flight are answered. Every stored file is
        // complete at any moment (renamed into place); uploads cut short are what
        // garbage-collect expires.
        let signal = await signals.next()
        log.info("shutting down", [("signal", "\(signal)")])
        await server.shutdown()
    } catch {
        fail("\(error)")
    }
case "garbage-collect":
    let options = parseOptions(arguments.dropFirst(), values: ["--root"], flags: ["--dry-run"])
    guard let root = options["--root"] else { fail("garbage-collect needs --root DIR") }
    let dryRun = options["--dry-run"] != nil
    do {
        let report = GarbageCollector(store: try RegistryStore(root: root)).collect(dryRun: dryRun)
        let verb = dryRun ? "would remove" : "removed"
        for digest in report.removedBlobs { print("\(verb) blob \(digest)") }
        for id in report.removedUploads { print("\(verb) upload \(id)") }
        print("\(report.removedBlobs.count) blobs (\(report.freedBytes) bytes) and \(report.removedUploads.count) uploads \(verb == "removed" ? "removed" : "to remove")")
    } catch {
        fail("\(error)")
    }
case "-h", "--help", "help":
    print(usage, terminator: "")
default:
    writeStderr(usage)
    exit(2)
}
