import BerthClient
import Glibc

/// An error a command reports: its message goes to stderr, its code is the exit status.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    var code: Int32 = 1

    init(_ message: String, code: Int32 = 1) {
        description = message
        self.code = code
    }
}

/// A command: docker's name, usage line, options and a body returning the exit status.
struct Command: Sendable {
    let name: String
    let usage: String
    let summary: String
    var options: [Option] = []
    /// false for run/create/exec, whose options end at the image or container.
    var interspersed = true
    var minArgs = 0
    var maxArgs = Int.max
    /// The exit status when the daemon refuses: 125 for run and create, 1 elsewhere.
    var failureCode: Int32 = 1
    let body: @Sendable (CLI, Arguments) throws -> Int32
}

/// The session state every command shares: the daemon address and a lazily made client.
final class CLI {
    let hostFlag: String?
    let environment: [String: String]
    private var made: EngineClient?

    init(hostFlag: String?, environment: [String: String]) {
        self.hostFlag = hostFlag
        self.environment = environment
    }

    var host: String { EngineClient.resolveHost(flag: hostFlag, environment: environment) }

    func client() throws -> EngineClient {
        if let made { return made }
        guard let address = DaemonAddress(host) else {
            throw CLIError("unable to parse docker host `\(host)`")
        }
        let c = EngineClient(address: address)
        made = c
        return c
    }

    func out(_ text: String) { writeAll(1, text) }
    func err(_ text: String) { writeAll(2, text) }
}

/// All commands by name, with docker's management-command aliases (`container ls`, `image rm`).
enum Commands {
    static let all: [Command] = ContainerCommands.all + RunCommands.all + ImageCommands.all
        + VolumeCommands.all + NetworkCommands.all + SystemCommands.all + LoginCommands.all

    static func find(_ words: [String]) -> (Command, Int)? {
        let byName = Dictionary(all.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        if words.count >= 2, let c = byName[words[0] + " " + words[1]] { return (c, 2) }
        if let first = words.first, let aliased = aliases[first], let c = byName[aliased] { return (c, 1) }
        if words.count >= 2, let aliased = aliases[words[0] + " " + words[1]], let c = byName[aliased] { return (c, 2) }
        if let first = words.first, let c = byName[first] { return (c, 1) }
        return nil
    }

    static let aliases: [String: String] = [
        "container ls": "ps", "container list": "ps", "container ps": "ps", "container run": "run",
        "container create": "create", "container start": "start", "container stop": "stop",
        "container restart": "restart", "container kill": "kill", "container rm": "rm", "container remove": "rm",
        "container logs": "logs", "container exec": "exec", "container inspect": "inspect",
        "container pause": "pause", "container unpause": "unpause", "container rename": "rename",
        "container wait": "wait", "container top": "top", "container stats": "stats", "container attach": "attach",
        "image ls": "images", "image list": "images", "image rm": "rmi", "image remove": "rmi", "image pull": "pull",
        "image push": "push", "image tag": "tag", "image load": "load", "image save": "save",
        "image import": "import", "image history": "history", "image inspect": "image inspect",
        "system events": "events", "system info": "info", "volume list": "volume ls", "volume remove": "volume rm",
        "container prune": "container prune",
    ]

    static let usage = """
        Usage:  berth [OPTIONS] COMMAND

        A client of the Docker Engine API for Berth (and dockerd)

        Common Commands:
          run         Create and run a new container from an image
          exec        Execute a command in a running container
          ps          List containers
          images      List images
          pull        Download an image from a registry
          push        Upload an image to a registry
          login       Log in to a registry
          logout      Log out from a registry
          version     Show the Berth version information
          info        Display system-wide information

        Management Commands:
          container   Manage containers
          image       Manage images
          volume      Manage volumes
          system      Manage Berth

        Global Options:
          -H, --host string   Daemon socket to connect to (BERTH_HOST, DOCKER_HOST,
                              default unix:///run/berth/berth.sock)
          -v, --version       Print version information and quit

        Run 'berth COMMAND --help' for more information on a command.

        """

    /// Parses global options and runs a command; returns the exit status.
    static func main(_ argv: [String], environment: [String: String]) -> Int32 {
        let globals = [Option("host", "H", .list), Option("log-level", "l", .value), Option("debug", "D"),
                       Option("config", nil, .value), Option("context", "c", .value), Option("version", "v"),
                       Option("help", "h"), Option("tls"), Option("tlsverify")]
        let parsed: Arguments
        do {
            parsed = try Arguments.parse(argv, options: globals, interspersed: false)
        } catch {
            writeAll(2, "berth: \(error.message)\nSee 'berth --help'.\n")
            return 125
        }
        if parsed.flag("version") {
            writeAll(1, "Berth version \(BerthVersion.version)\n")
            return 0
        }
        let words = parsed.positionals
        if words.isEmpty || parsed.flag("help") {
            writeAll(words.isEmpty && !parsed.flag("help") ? 2 : 1, usage)
            return 0
        }
        if words.first == "help" {
            writeAll(1, usage)
            return 0
        }
        if words.first == "registry" { return RegistryCommand.exec(Array(words.dropFirst())) }
        guard let (command, used) = find(words) else {
            writeAll(2, "berth: '\(words.joined(separator: " "))' is not a berth command.\nSee 'berth --help'\n")
            return 1
        }
        let cli = CLI(hostFlag: parsed.list("host").last, environment: environment)
        var options = command.options
        if !options.contains(where: { $0.long == "help" }) {
            options.append(Option("help", options.contains(where: { $0.short == "h" }) ? nil : "h"))
        }
        let args: Arguments
        do {
            args = try Arguments.parse(Array(words.dropFirst(used)), options: options, interspersed: command.interspersed)
        } catch {
            writeAll(2, "berth: \(error.message)\n\nRun 'berth \(command.name) --help' for more information\n")
            return 125
        }
        if args.flag("help") {
            writeAll(1, "\nUsage:  \(command.usage)\n\n\(command.summary)\n")
            return 0
        }
        let n = args.positionals.count
        if n < command.minArgs || n > command.maxArgs {
            let want = command.minArgs == command.maxArgs
                ? "exactly \(command.minArgs) argument\(command.minArgs == 1 ? "" : "s")"
                : n < command.minArgs ? "at least \(command.minArgs) argument\(command.minArgs == 1 ? "" : "s")"
                : command.maxArgs == 0 ? "no arguments" : "at most \(command.maxArgs) argument\(command.maxArgs == 1 ? "" : "s")"
            writeAll(2, "\"berth \(command.name)\" requires \(want).\nSee 'berth \(command.name) --help'.\n\n"
                + "Usage:  \(command.usage)\n\n\(command.summary)\n")
            return 1
        }
        do {
            return try command.body(cli, args)
        } catch let error as CLIError {
            if !error.description.isEmpty { writeAll(2, error.description + "\n") }
            return error.code
        } catch let error as ClientError {
            let prefix = command.failureCode == 125 ? "berth: " : ""
            writeAll(2, prefix + error.description + "\n")
            return command.failureCode
        } catch {
            writeAll(2, "\(error)\n")
            return command.failureCode
        }
    }
}

/// The `filters` query value docker sends: `{"key":{"value":true}}`.
func filtersJSON(_ items: [String]) throws -> String? {
    guard !items.isEmpty else { return nil }
    var grouped = JSONObject()
    for item in items {
        guard let eq = item.firstIndex(of: "=") else {
            throw CLIError("Error response from daemon: bad format of filter (expected name=value)")
        }
        let key = String(item[..<eq]).lowercased(), value = String(item[item.index(after: eq)...])
        var values = grouped[key]?.object ?? JSONObject()
        values[value] = .bool(true)
        grouped[key] = .object(values)
    }
    return JSON.object(grouped).compact
}

extension Arguments {
    /// The `--format` template, if given (docker's `--format` has no shorthand except `-f` in a
    /// few commands, declared by them).
    var format: String? { value("format").flatMap { $0.isEmpty ? nil : $0 } }
}

/// Runs `each` over the arguments as docker's multi-target commands do: errors are printed and
/// the rest still run; any failure makes the exit status 1.
func forEachTarget(_ targets: [String], _ each: (String) throws -> Void) -> Int32 {
    var status: Int32 = 0
    for t in targets {
        do {
            try each(t)
        } catch {
            writeAll(2, "\(error)\n")
            status = 1
        }
    }
    return status
}

/// Renders a `--format` template over one object (inspect, version, info).
func render(_ format: String, _ value: JSON) throws -> String {
    do {
        return try Template(format.replacing("\\n", with: "\n").replacing("\\t", with: "\t")).render(value)
    } catch {
        throw CLIError("template parsing error: \(error)")
    }
}
