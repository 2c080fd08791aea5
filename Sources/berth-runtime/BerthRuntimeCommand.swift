import BerthOCI
import BerthRuntime
import CBerthSys
import FoundationEssentials
import Glibc

// runc's command line, so that containerd and other tools that drive runc drive Berth.
// This file only parses arguments and calls BerthRuntime.

@main
enum Main {
    static func main() {
        exit(run(Array(CommandLine.arguments.dropFirst())))
    }

    static func run(_ args: [String]) -> Int32 {
        do {
            // Global flags come before the command, as with runc; they are accepted after it too.
            var rest = args[...]
            var globalArgs: [String] = []
            while let first = rest.first, first.hasPrefix("-"), first != "--" {
                let name = String(first.drop { $0 == "-" }.prefix { $0 != "=" })
                guard let spec = Globals.specs.first(where: { $0.names.contains(name) }) else { break }
                globalArgs.append(rest.removeFirst())
                if spec.takesValue, !first.contains("="), let value = rest.first {
                    globalArgs.append(value)
                    rest.removeFirst()
                }
            }
            let leading = try ParsedFlags(globalArgs, specs: Globals.specs, stopAtFirstPositional: false)
            if leading.bool("version") {
                print("berth-runtime version 0.1.0\nspec: \(Spec.version)")
                return 0
            }
            guard let name = rest.first, !leading.bool("help") else {
                print(overview)
                return rest.isEmpty && !leading.bool("help") ? 1 : 0
            }
            guard let command = commands.first(where: { $0.name == name || (name == "ls" && $0.name == "list") }) else {
                throw UsageError(message: "unknown command \"\(name)\" (see berth-runtime --help)")
            }
            let flags = try ParsedFlags(globalArgs + rest.dropFirst(), specs: command.flags + Globals.specs,
                                        stopAtFirstPositional: command.stopAtFirstPositional)
            if flags.bool("help") {
                print(command.helpText)
                return 0
            }
            // The commands that put a process of ours into a container run it from a binary the
            // container cannot write (berth_sealed_exe.h); the others spare the re-exec.
            if ["create", "run", "exec"].contains(command.name), berth_run_sealed(CommandLine.argc, CommandLine.unsafeArgv) != 0 {
                throw UsageError(message: "cannot run from a sealed copy of berth-runtime: \(String(cString: strerror(errno)))")
            }
            // Before any file is opened here (the log, state): see reservePreservedFDs.
            let placeholders = Runtime.reservePreservedFDs(try flags.int("preserve-fds") ?? 0)
            var globals = Globals()
            globals.preservePlaceholders = placeholders
            globals.root = flags.string("root") ?? globals.root
            globals.log = flags.string("log")
            globals.logFormat = flags.string("log-format") ?? globals.logFormat
            globals.debug = flags.bool("debug")
            Log.configure(path: globals.log, format: Log.Format(rawValue: globals.logFormat) ?? .text, debug: globals.debug)
            return try command.run(flags, globals)
        } catch let error as UsageError {
            Log.printError(error.message)
            return 1
        } catch let error as RuntimeError {
            // A person gets one plain line on stderr; a log file (containerd's) gets a record too.
            if Log.writesElsewhere { Log.error(error.message) }
            Log.printError(error.message)
            return 1
        } catch {
            Log.printError("\(error)")
            return 1
        }
    }

    static var overview: String {
        var text = "berth-runtime: Berth's OCI runtime; runs OCI bundles with runc's command line.\n\n"
        text += "Usage: berth-runtime [global options] COMMAND [options] [arguments]\n\nCommands:\n"
        for c in commands { text += "  " + c.name + String(repeating: " ", count: 10 - c.name.count) + c.summary + "\n" }
        text += "\nGlobal options:\n" + Globals.specs.map(\.helpLine).joined()
        return text + "\nRun 'berth-runtime COMMAND --help' for a command's options."
    }

    static let createFlags: [FlagSpec] = [
        .value("bundle", "b", help: "path to the bundle directory (default: the current directory)"),
        .value("pid-file", help: "write the container's pid to this file"),
        .value("console-socket", help: "unix socket that receives the pty master (SCM_RIGHTS)"),
        .value("preserve-fds", help: "pass N extra file descriptors (from fd 3) to the container"),
        .bool("no-pivot", help: "use MS_MOVE and chroot instead of pivot_root"),
        .bool("no-new-keyring", help: "accepted for runc compatibility"),
    ]

    static func createOptions(_ f: ParsedFlags, _ g: Globals) throws(UsageError) -> Runtime.CreateOptions {
        var o = Runtime.CreateOptions(bundle: f.string("bundle") ?? ".")
        o.pidFile = f.string("pid-file")
        o.consoleSocket = f.string("console-socket")
        o.preserveFDs = try f.int("preserve-fds") ?? 0
        o.preservePlaceholders = g.preservePlaceholders
        o.noPivot = f.bool("no-pivot")
        return o
    }

    static let commands: [CommandSpec] = [
        CommandSpec(name: "create", usage: "[options] <container-id>", summary: "create a container; its process waits for start",
                    flags: createFlags) { f, g in
            let id = try f.exactly("container-id")[0]
            try Runtime(root: g.root).create(id: id, createOptions(f, g))
            return 0
        },
        CommandSpec(name: "start", usage: "<container-id>", summary: "start the process of a created container", flags: []) { f, g in
            try Runtime(root: g.root).start(id: f.exactly("container-id")[0])
            return 0
        },
        CommandSpec(name: "run", usage: "[options] <container-id>", summary: "create and start a container, and wait for it unless detached",
                    flags: createFlags + [.bool("detach", "d", help: "do not wait for the container's process")]) { f, g in
            let id = try f.exactly("container-id")[0]
            return try Runtime(root: g.root).run(id: id, createOptions(f, g), detach: f.bool("detach"))
        },
        CommandSpec(name: "state", usage: "<container-id>", summary: "print the state of a container as JSON", flags: []) { f, g in
            printJSON(try Runtime(root: g.root).state(id: f.exactly("container-id")[0]), pretty: true)
            return 0
        },
        CommandSpec(name: "kill", usage: "[options] <container-id> [signal]", summary: "send a signal (default SIGTERM) to a container",
                    flags: [.bool("all", "a", help: "send the signal to every process of the container")]) { f, g in
            guard (1...2).contains(f.positionals.count) else { throw UsageError(message: "expected <container-id> [signal]") }
            let name = f.positionals.count == 2 ? f.positionals[1] : "SIGTERM"
            guard let signal = RuntimeSignal.parse(name) else {
                throw RuntimeError(.invalidArgument, "unknown signal \"\(name)\"")
            }
            try Runtime(root: g.root).kill(id: f.positionals[0], signal: signal, all: f.bool("all"))
            return 0
        },
        CommandSpec(name: "delete", usage: "[options] <container-id>", summary: "delete a container and everything it holds",
                    flags: [.bool("force", "f", help: "kill the container first if it is running")]) { f, g in
            try Runtime(root: g.root).delete(id: f.exactly("container-id")[0], force: f.bool("force"))
            return 0
        },
        CommandSpec(name: "exec", usage: "[options] <container-id> [command [args...]]", summary: "run a new process in a container",
                    flags: [
                        .value("process", "p", help: "a process.json to run instead of a command"),
                        .bool("tty", "t", help: "allocate a pty (relayed here, or sent to --console-socket)"),
                        .bool("detach", "d", help: "return once the process has started"),
                        .value("pid-file", help: "write the process's pid to this file"),
                        .value("console-socket", help: "unix socket that receives the pty master"),
                        .value("env", "e", help: "KEY=value to add to the environment (repeatable)"),
                        .value("cwd", help: "working directory in the container"),
                        .value("user", "u", help: "uid[:gid] to run as"),
                        .value("additional-gids", "g", help: "supplementary group (repeatable)"),
                        .value("cap", "c", help: "add a capability (repeatable)"),
                        .bool("no-new-privs", help: "set no_new_privs for the process"),
                        .value("preserve-fds", help: "pass N extra file descriptors (from fd 3)"),
                        .value("apparmor", help: "accepted for runc compatibility"),
                        .value("process-label", help: "accepted for runc compatibility"),
                        .bool("ignore-paused", help: "accepted for runc compatibility"),
                        .value("cgroup", help: "accepted for runc compatibility"),
                    ], stopAtFirstPositional: true) { f, g in
            guard let id = f.positionals.first else { throw UsageError(message: "exec needs a container id") }
            let runtime = Runtime(root: g.root)
            var options = Runtime.ExecOptions(process: try execProcess(f, runtime, id: id))
            options.detach = f.bool("detach")
            options.pidFile = f.string("pid-file")
            options.consoleSocket = f.string("console-socket")
            options.preserveFDs = try f.int("preserve-fds") ?? 0
            options.preservePlaceholders = g.preservePlaceholders
            return try runtime.exec(id: id, options) ?? 0
        },
        CommandSpec(name: "ps", usage: "[options] <container-id> [ps options]", summary: "list the processes of a container",
                    flags: [.value("format", "f", help: "table or json")], stopAtFirstPositional: true) { f, g in
            guard let id = f.positionals.first else { throw UsageError(message: "ps needs a container id") }
            let pids = try Runtime(root: g.root).processes(id: id)
            if f.string("format") == "json" {
                printJSON(pids, pretty: false)
                return 0
            }
            // As runc: run ps(1) on the host and keep the header and the container's lines.
            let psArgs = f.positionals.count > 1 ? Array(f.positionals.dropFirst()) : ["-ef"]
            let out = try RuntimeCommandOutput.capture("/bin/ps", ["ps"] + psArgs)
            let lines = out.split(separator: "\n")
            guard let header = lines.first else { return 0 }
            let pidColumn = header.split(separator: " ").firstIndex(of: "PID") ?? 1
            print(header)
            let set = Set(pids)
            for line in lines.dropFirst() {
                let fields = line.split(separator: " ")
                if fields.count > pidColumn, let pid = Int32(fields[pidColumn]), set.contains(pid) { print(line) }
            }
            return 0
        },
        CommandSpec(name: "pause", usage: "<container-id>", summary: "freeze every process of a container", flags: []) { f, g in
            try Runtime(root: g.root).pause(id: f.exactly("container-id")[0])
            return 0
        },
        CommandSpec(name: "resume", usage: "<container-id>", summary: "thaw a paused container", flags: []) { f, g in
            try Runtime(root: g.root).resume(id: f.exactly("container-id")[0])
            return 0
        },
        CommandSpec(name: "list", usage: "[options]", summary: "list containers",
                    flags: [.value("format", "f", help: "table or json"), .bool("quiet", "q", help: "print ids only")]) { f, g in
            let reports = Runtime(root: g.root).list()
            if f.bool("quiet") {
                for r in reports { print(r.id) }
            } else if f.string("format") == "json" {
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
            return 0
        },
        CommandSpec(name: "update", usage: "[options] <container-id>", summary: "change the resource limits of a running container",
                    flags: [
                        .value("resources", "r", help: "a linux.resources JSON document, or - for stdin"),
                        .value("memory", help: "memory limit in bytes"),
                        .value("memory-reservation", help: "memory soft limit in bytes"),
                        .value("memory-swap", help: "memory plus swap limit in bytes"),
                        .value("cpu-shares", help: "relative CPU weight"),
                        .value("cpu-quota", help: "CPU time per period in microseconds"),
                        .value("cpu-period", help: "CPU period in microseconds"),
                        .value("cpuset-cpus", help: "CPUs the container may use"),
                        .value("cpuset-mems", help: "memory nodes the container may use"),
                        .value("pids-limit", help: "maximum number of processes"),
                        .value("blkio-weight", help: "block IO weight (10-1000)"),
                    ]) { f, g in
            let id = try f.exactly("container-id")[0]
            try Runtime(root: g.root).update(id: id, resources: updateResources(f))
            return 0
        },
        CommandSpec(name: "spec", usage: "[options]", summary: "write a default config.json",
                    flags: [.value("bundle", "b", help: "directory to write config.json into"),
                            .bool("rootless", help: "accepted for runc compatibility")]) { f, _ in
            let path = (f.string("bundle") ?? ".") + "/config.json"
            guard access(path, F_OK) != 0 else { throw RuntimeError(.conflict, "\(path) already exists; remove it first") }
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let text = goStyleIndent(String(decoding: try e.encode(Spec.example()), as: UTF8.self)) + "\n"
            try RuntimeCommandOutput.write(path, Data(text.utf8))
            return 0
        },
        CommandSpec(name: "features", usage: "", summary: "print what this runtime implements, as JSON", flags: []) { _, _ in
            printJSON(Features.current(), pretty: true)
            return 0
        },
    ]

    /// The process `exec` runs: a process.json, or the container's own process with a new command.
    static func execProcess(_ f: ParsedFlags, _ runtime: Runtime, id: String) throws -> BerthOCI.Process {
        var p: BerthOCI.Process
        if let path = f.string("process") {
            let data = try readInput(path, option: "--process")
            do { p = try JSONDecoder().decode(BerthOCI.Process.self, from: data) } catch let e as DecodingError {
                throw RuntimeError(.invalidArgument, "--process \(path): \(Runtime.describe(e))")
            }
        } else {
            let command = Array(f.positionals.dropFirst())
            guard !command.isEmpty else { throw UsageError(message: "exec needs a command to run (or --process)") }
            p = try runtime.defaultExecProcess(id: id)
            p.args = command
        }
        if f.bool("tty") { p.terminal = true }
        p.env = (p.env ?? []) + f.strings("env")
        if let cwd = f.string("cwd") { p.cwd = cwd }
        if let user = f.string("user") {
            let parts = user.split(separator: ":", maxSplits: 1)
            guard let uid = UInt32(parts.first ?? ""), parts.count == 1 || UInt32(parts[1]) != nil else {
                throw UsageError(message: "--user \"\(user)\": expected uid[:gid] as numbers")
            }
            p.user.uid = uid
            p.user.gid = parts.count == 2 ? UInt32(parts[1])! : 0
        }
        let gids = f.strings("additional-gids")
        if !gids.isEmpty {
            p.user.additionalGids = try gids.map { g throws(UsageError) in
                guard let n = UInt32(g) else { throw UsageError(message: "--additional-gids \"\(g)\": not a number") }
                return n
            }
        }
        let caps = f.strings("cap")
        if !caps.isEmpty {
            var c = p.capabilities ?? Capabilities()
            c.bounding = (c.bounding ?? []) + caps
            c.effective = (c.effective ?? []) + caps
            c.permitted = (c.permitted ?? []) + caps
            p.capabilities = c
        }
        if f.bool("no-new-privs") { p.noNewPrivileges = true }
        return p
    }

    static func updateResources(_ f: ParsedFlags) throws -> Resources {
        var r = Resources()
        if let path = f.string("resources") {
            do { r = try JSONDecoder().decode(Resources.self, from: try readInput(path, option: "--resources")) } catch let e as DecodingError {
                throw RuntimeError(.invalidArgument, "--resources: \(Runtime.describe(e))")
            }
        }
        if f.string("memory") != nil || f.string("memory-reservation") != nil || f.string("memory-swap") != nil {
            var m = r.memory ?? Resources.Memory()
            m.limit = try f.int("memory") ?? m.limit
            m.reservation = try f.int("memory-reservation") ?? m.reservation
            m.swap = try f.int("memory-swap") ?? m.swap
            r.memory = m
        }
        if ["cpu-shares", "cpu-quota", "cpu-period", "cpuset-cpus", "cpuset-mems"].contains(where: { f.string($0) != nil }) {
            var c = r.cpu ?? Resources.CPU()
            c.shares = try f.int("cpu-shares") ?? c.shares
            c.quota = try f.int("cpu-quota") ?? c.quota
            c.period = try f.int("cpu-period") ?? c.period
            c.cpus = f.string("cpuset-cpus") ?? c.cpus
            c.mems = f.string("cpuset-mems") ?? c.mems
            r.cpu = c
        }
        if let limit = try f.int("pids-limit", as: Int64.self) { r.pids = Resources.Pids(limit: limit) }
        if let weight = try f.int("blkio-weight", as: UInt16.self) { r.blockIO = Resources.BlockIO(weight: weight) }
        return r
    }
}

/// Reads a file named by an option, or standard input for "-".
func readInput(_ path: String, option: String) throws(RuntimeError) -> Data {
    do { return try RuntimeCommandOutput.read(path == "-" ? "/dev/stdin" : path) } catch {
        throw RuntimeError(.invalidArgument, "\(option) \(path): \(error)")
    }
}

func printJSON<T: Encodable>(_ value: T, pretty: Bool) {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    guard let data = try? e.encode(value) else { return }
    let text = String(decoding: data, as: UTF8.self)
    print(pretty ? goStyleIndent(text) : text)
}
