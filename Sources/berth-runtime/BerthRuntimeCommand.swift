import ArgumentParser
import BerthOCI
import BerthRuntime
import FoundationEssentials
import Glibc

// runc's command line, so that containerd and other tools that drive runc drive Berth.
// This file only parses arguments and calls BerthRuntime.

struct GlobalOptions: ParsableArguments {
    @Option(help: "Directory for container state.")
    var root = "/run/berth-runtime"
    @Option(help: "Write log lines (and errors) to this file.")
    var log: String?
    @Option(name: .customLong("log-format"), help: "text or json.")
    var logFormat = "text"
    @Flag(help: "Log debug output.")
    var debug = false
    @Flag(name: .customLong("systemd-cgroup"), help: "Accepted for runc compatibility; cgroupsPath in slice:prefix:name form is honoured.")
    var systemdCgroup = false
    @Option(help: .hidden) var criu: String?
    @Option(help: .hidden) var rootless: String?

    func runtime() -> Runtime {
        Log.configure(path: log, format: Log.Format(rawValue: logFormat) ?? .text, debug: debug)
        return Runtime(root: root)
    }
}

/// Runs a command body, turning a RuntimeError into one error line and exit status 1.
func perform<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let error as RuntimeError {
        // A person gets one plain line on stderr; a log file (containerd's) gets a log record too.
        if Log.writesElsewhere { Log.error(error.message) }
        Log.printError(error.message)
        throw ExitCode(1)
    }
}

@main
enum Main {
    /// runc takes global options before the command (`--root R create ...`); the argument
    /// parser wants them after it, so they are moved there.
    static func main() {
        var rest = Array(CommandLine.arguments.dropFirst())
        var globals: [String] = []
        let withValue: Set = ["--root", "--log", "--log-format", "--criu", "--rootless"]
        let flags: Set = ["--debug", "--systemd-cgroup"]
        while let first = rest.first, first.hasPrefix("-") {
            let name = first.hasPrefix("--") ? String(first.split(separator: "=", maxSplits: 1)[0]) : first
            if withValue.contains(name) {
                globals.append(rest.removeFirst())
                if !first.contains("="), !rest.isEmpty { globals.append(rest.removeFirst()) }
            } else if flags.contains(name) {
                globals.append(rest.removeFirst())
            } else {
                break
            }
        }
        if let command = rest.first, !command.hasPrefix("-") {
            rest.insert(contentsOf: globals, at: 1)
        } else {
            rest.insert(contentsOf: globals, at: 0)
        }
        BerthRuntimeCommand.main(rest)
    }
}

struct BerthRuntimeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "berth-runtime",
        abstract: "Berth's OCI runtime: runs OCI bundles with runc's command line.",
        version: "berth-runtime 0.1.0\nspec: \(Spec.version)",
        subcommands: [Create.self, Start.self, Run.self, State.self, Kill.self, Delete.self, Exec.self, Ps.self,
                      Pause.self, Resume.self, List.self, Update.self, SpecCommand.self, FeaturesCommand.self])
}

struct CreateFlags: ParsableArguments {
    @Option(name: [.short, .long], help: "Path to the bundle directory.")
    var bundle = "."
    @Option(name: .customLong("pid-file"), help: "Write the container's pid here.")
    var pidFile: String?
    @Option(name: .customLong("console-socket"), help: "Unix socket that receives the pty master (SCM_RIGHTS).")
    var consoleSocket: String?
    @Option(name: .customLong("preserve-fds"), help: "Pass N extra fds (from 3) to the container.")
    var preserveFDs = 0
    @Flag(name: .customLong("no-pivot"), help: "Use MS_MOVE and chroot instead of pivot_root.")
    var noPivot = false
    @Flag(name: .customLong("no-new-keyring"), help: "Accepted for runc compatibility.")
    var noNewKeyring = false

    var options: Runtime.CreateOptions {
        var o = Runtime.CreateOptions(bundle: bundle)
        o.pidFile = pidFile
        o.consoleSocket = consoleSocket
        o.preserveFDs = preserveFDs
        o.noPivot = noPivot
        return o
    }
}

struct Create: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create a container; its process waits for start.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var flags: CreateFlags
    @Argument var id: String
    func run() throws { try perform { try global.runtime().create(id: id, flags.options) } }
}

struct Start: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Start the process of a created container.")
    @OptionGroup var global: GlobalOptions
    @Argument var id: String
    func run() throws { try perform { try global.runtime().start(id: id) } }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create and start a container; wait for it unless detached.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var flags: CreateFlags
    @Flag(name: [.short, .long], help: "Detach from the container's process.")
    var detach = false
    @Argument var id: String
    func run() throws {
        let code = try perform { try global.runtime().run(id: id, flags.options, detach: detach) }
        if code != 0 { throw ExitCode(code) }
    }
}

struct State: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the state of a container as JSON.")
    @OptionGroup var global: GlobalOptions
    @Argument var id: String
    func run() throws {
        let report = try perform { try global.runtime().state(id: id) }
        printJSON(report, pretty: true)
    }
}

struct Kill: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Send a signal (default SIGTERM) to a container.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: [.short, .long], help: "Signal every process in the container.")
    var all = false
    @Argument var id: String
    @Argument var signal = "SIGTERM"
    func run() throws {
        try perform { () throws in
            guard let sig = RuntimeSignal.parse(signal) else {
                throw RuntimeError(.invalidArgument, "unknown signal \"\(signal)\"")
            }
            try global.runtime().kill(id: id, signal: sig, all: all)
        }
    }
}

struct Delete: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Delete a container and what it holds.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: [.short, .long], help: "Kill a running container first.")
    var force = false
    @Argument var id: String
    func run() throws { try perform { try global.runtime().delete(id: id, force: force) } }
}

struct Exec: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a new process in a container.")
    @OptionGroup var global: GlobalOptions
    @Option(name: [.short, .long], help: "A process.json to run instead of arguments.")
    var process: String?
    @Flag(name: [.short, .customLong("tty")], help: "Allocate a pty (needs --console-socket).")
    var tty = false
    @Flag(name: [.short, .long], help: "Return as soon as the process started.")
    var detach = false
    @Option(name: .customLong("pid-file")) var pidFile: String?
    @Option(name: .customLong("console-socket")) var consoleSocket: String?
    @Option(name: [.short, .long], help: "KEY=value to add to the environment.")
    var env: [String] = []
    @Option(help: "Working directory in the container.")
    var cwd: String?
    @Option(name: [.short, .long], help: "uid[:gid] to run as.")
    var user: String?
    @Option(name: [.customShort("g"), .customLong("additional-gids")]) var additionalGids: [UInt32] = []
    @Option(name: [.short, .customLong("cap")], help: "Add a capability.")
    var caps: [String] = []
    @Flag(name: .customLong("no-new-privs")) var noNewPrivs = false
    @Option(name: .customLong("preserve-fds")) var preserveFDs = 0
    @Option(help: .hidden) var apparmor: String?
    @Option(name: .customLong("process-label"), help: .hidden) var processLabel: String?
    @Flag(name: .customLong("ignore-paused"), help: .hidden) var ignorePaused = false
    @Argument(parsing: .captureForPassthrough, help: "CONTAINER-ID [COMMAND [ARG...]]")
    var arguments: [String] = []

    func run() throws {
        let code = try perform { () throws -> Int32? in
            guard let id = arguments.first else { throw RuntimeError(.invalidArgument, "exec needs a container id") }
            let runtime = global.runtime()
            var options = Runtime.ExecOptions(process: try makeProcess(runtime, id: id))
            options.detach = detach
            options.pidFile = pidFile
            options.consoleSocket = consoleSocket
            options.preserveFDs = preserveFDs
            return try runtime.exec(id: id, options)
        }
        if let code, code != 0 { throw ExitCode(code) }
    }

    func makeProcess(_ runtime: Runtime, id: String) throws(RuntimeError) -> BerthOCI.Process {
        var p: BerthOCI.Process
        if let process {
            let data = try readInput(process, option: "--process")
            do { p = try JSONDecoder().decode(BerthOCI.Process.self, from: data) } catch let e as DecodingError {
                throw RuntimeError(.invalidArgument, "--process \(process): \(Runtime.describe(e))")
            } catch {
                throw RuntimeError(.invalidArgument, "--process \(process): \(error)")
            }
        } else {
            let command = Array(arguments.dropFirst())
            guard !command.isEmpty else { throw RuntimeError(.invalidArgument, "exec needs a command to run (or --process)") }
            p = try runtime.defaultExecProcess(id: id)
            p.args = command
        }
        if tty { p.terminal = true }
        p.env = (p.env ?? []) + env
        if let cwd { p.cwd = cwd }
        if let user {
            let parts = user.split(separator: ":", maxSplits: 1)
            guard let uid = UInt32(parts[0]), parts.count == 1 || UInt32(parts[1]) != nil else {
                throw RuntimeError(.invalidArgument, "--user \"\(user)\": expected uid[:gid] in numbers")
            }
            p.user.uid = uid
            p.user.gid = parts.count == 2 ? UInt32(parts[1])! : 0
        }
        if !additionalGids.isEmpty { p.user.additionalGids = additionalGids }
        if !caps.isEmpty {
            var c = p.capabilities ?? Capabilities()
            for cap in caps {
                for kp in [\Capabilities.bounding, \.effective, \.permitted] {
                    c[keyPath: kp] = (c[keyPath: kp] ?? []) + [cap]
                }
            }
            p.capabilities = c
        }
        if noNewPrivs { p.noNewPrivileges = true }
        return p
    }
}

struct Ps: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the processes running in a container.")
    @OptionGroup var global: GlobalOptions
    @Option(name: [.short, .long], help: "table or json.")
    var format = "table"
    @Argument var id: String
    @Argument(parsing: .captureForPassthrough, help: "Options for ps(1) in table format (default -ef).")
    var psArgs: [String] = []

    func run() throws {
        let pids = try perform { try global.runtime().processes(id: id) }
        if format == "json" {
            printJSON(pids, pretty: false)
            return
        }
        // As runc: run ps(1) on the host and keep the header and the container's lines.
        let out = try perform { () throws in try psTable(args: psArgs.isEmpty ? ["-ef"] : psArgs) }
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false)
        guard let header = lines.first else { return }
        let pidColumn = header.split(separator: " ").firstIndex(of: "PID") ?? 1
        print(header)
        let set = Set(pids)
        for line in lines.dropFirst() {
            let fields = line.split(separator: " ")
            if fields.count > pidColumn, let pid = Int32(fields[pidColumn]), set.contains(pid) { print(line) }
        }
    }
}

func psTable(args: [String]) throws(RuntimeError) -> String {
    do { return try RuntimeCommandOutput.capture("/bin/ps", ["ps"] + args) } catch {
        throw RuntimeError(.system, "running ps: \(error)")
    }
}

/// Reads a file named by an option, or standard input for "-".
func readInput(_ path: String, option: String) throws(RuntimeError) -> Data {
    do { return try RuntimeCommandOutput.read(path == "-" ? "/dev/stdin" : path) } catch {
        throw RuntimeError(.invalidArgument, "\(option) \(path): \(error)")
    }
}

struct Pause: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Freeze every process of a container.")
    @OptionGroup var global: GlobalOptions
    @Argument var id: String
    func run() throws { try perform { try global.runtime().pause(id: id) } }
}

struct Resume: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Thaw a paused container.")
    @OptionGroup var global: GlobalOptions
    @Argument var id: String
    func run() throws { try perform { try global.runtime().resume(id: id) } }
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List containers.", aliases: ["ls"])
    @OptionGroup var global: GlobalOptions
    @Option(name: [.short, .long], help: "table or json.")
    var format = "table"
    @Flag(name: [.short, .long], help: "Print ids only.")
    var quiet = false

    func run() throws {
        let reports = global.runtime().list()
        if quiet {
            for r in reports { print(r.id) }
        } else if format == "json" {
            printJSON(reports, pretty: false)
        } else {
            let rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]] +
                reports.map { [$0.id, String($0.pid), $0.status, $0.bundle, $0.created, $0.owner] }
            let widths = (0..<6).map { c in rows.map { $0[c].count }.max() ?? 0 }
            for row in rows {
                let cells = row.enumerated().map { $0.element + String(repeating: " ", count: widths[$0.offset] + 3 - $0.element.count) }
                print(String(cells.joined().reversed().drop { $0 == " " }.reversed()))
            }
        }
    }
}

struct Update: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Change the resource limits of a running container.")
    @OptionGroup var global: GlobalOptions
    @Option(name: [.short, .long], help: "A JSON linux.resources document, or - for stdin.")
    var resources: String?
    @Option var memory: Int64?
    @Option(name: .customLong("memory-reservation")) var memoryReservation: Int64?
    @Option(name: .customLong("memory-swap")) var memorySwap: Int64?
    @Option(name: .customLong("cpu-shares")) var cpuShares: UInt64?
    @Option(name: .customLong("cpu-quota")) var cpuQuota: Int64?
    @Option(name: .customLong("cpu-period")) var cpuPeriod: UInt64?
    @Option(name: .customLong("cpuset-cpus")) var cpusetCpus: String?
    @Option(name: .customLong("cpuset-mems")) var cpusetMems: String?
    @Option(name: .customLong("pids-limit")) var pidsLimit: Int64?
    @Option(name: .customLong("blkio-weight")) var blkioWeight: UInt16?
    @Argument var id: String

    func run() throws {
        try perform { () throws in
            var r = Resources()
            if let resources {
                let data = try readInput(resources, option: "--resources")
                do { r = try JSONDecoder().decode(Resources.self, from: data) } catch {
                    throw RuntimeError(.invalidArgument, "--resources: not a linux.resources document: \(error)")
                }
            }
            if memory != nil || memoryReservation != nil || memorySwap != nil {
                var m = r.memory ?? Resources.Memory()
                m.limit = memory ?? m.limit
                m.reservation = memoryReservation ?? m.reservation
                m.swap = memorySwap ?? m.swap
                r.memory = m
            }
            if cpuShares != nil || cpuQuota != nil || cpuPeriod != nil || cpusetCpus != nil || cpusetMems != nil {
                var c = r.cpu ?? Resources.CPU()
                c.shares = cpuShares ?? c.shares
                c.quota = cpuQuota ?? c.quota
                c.period = cpuPeriod ?? c.period
                c.cpus = cpusetCpus ?? c.cpus
                c.mems = cpusetMems ?? c.mems
                r.cpu = c
            }
            if let pidsLimit { r.pids = Resources.Pids(limit: pidsLimit) }
            if let blkioWeight { r.blockIO = Resources.BlockIO(weight: blkioWeight) }
            try global.runtime().update(id: id, resources: r)
        }
    }
}

struct SpecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "spec", abstract: "Write a default config.json.")
    @OptionGroup var global: GlobalOptions
    @Option(name: [.short, .long], help: "Bundle directory to write config.json into.")
    var bundle = "."

    func run() throws {
        let path = bundle + "/config.json"
        try perform { () throws in
            guard !FileManager.default.fileExists(atPath: path) else {
                throw RuntimeError(.conflict, "\(path) already exists; remove it first")
            }
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            do { try RuntimeCommandOutput.write(path, Data(goStyleIndent(String(decoding: e.encode(Spec.example()), as: UTF8.self)).utf8)) } catch {
                throw RuntimeError(.system, "writing \(path): \(error)")
            }
        }
    }
}

struct FeaturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "features", abstract: "Print what this runtime implements, as JSON.")
    @OptionGroup var global: GlobalOptions
    func run() throws { printJSON(Features.current(), pretty: true) }
}

func printJSON<T: Encodable>(_ value: T, pretty: Bool) {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    guard let data = try? e.encode(value) else { return }
    let text = String(decoding: data, as: UTF8.self)
    print(pretty ? goStyleIndent(text) : text)
}
