import BerthClient
import BerthOS
import Glibc

/// run, create, start, attach and exec: the commands that make containers and processes and
/// can hold a terminal.
enum RunCommands {
    static let all: [Command] = [run, create, start, attach, exec]

    /// The options of `docker create`; `run` adds its own.
    static let createOptions: [Option] = [
        Option("name", nil, .value), Option("env", "e", .list), Option("env-file", nil, .list),
        Option("volume", "v", .list), Option("mount", nil, .list), Option("workdir", "w", .value),
        Option("user", "u", .value), Option("restart", nil, .value), Option("memory", "m", .value),
        Option("cpus", nil, .value), Option("cpu-shares", "c", .value), Option("cpuset-cpus", nil, .value),
        Option("pids-limit", nil, .value), Option("label", "l", .list), Option("init"),
        Option("entrypoint", nil, .value), Option("hostname", "h", .value), Option("cap-add", nil, .list),
        Option("cap-drop", nil, .list), Option("privileged"), Option("read-only"), Option("tmpfs", nil, .list),
        Option("stop-signal", nil, .value), Option("stop-timeout", nil, .value), Option("health-cmd", nil, .value),
        Option("health-interval", nil, .value), Option("health-timeout", nil, .value),
        Option("health-start-period", nil, .value), Option("health-retries", nil, .value), Option("no-healthcheck"),
        Option("network", nil, .list), Option("net", nil, .list), Option("network-alias", nil, .list),
        Option("ip", nil, .value), Option("ip6", nil, .value), Option("link-local-ip", nil, .list),
        Option("mac-address", nil, .value), Option("dns-search", nil, .list), Option("dns-option", nil, .list),
        Option("dns-opt", nil, .list), Option("domainname", nil, .value), Option("publish", "p", .list),
        Option("publish-all", "P"), Option("expose", nil, .list), Option("pull", nil, .value),
        Option("interactive", "i"), Option("tty", "t"), Option("attach", "a", .list), Option("platform", nil, .value),
        Option("security-opt", nil, .list), Option("ulimit", nil, .list), Option("sysctl", nil, .list),
        Option("add-host", nil, .list), Option("dns", nil, .list), Option("shm-size", nil, .value),
        Option("device", nil, .list), Option("log-driver", nil, .value), Option("log-opt", nil, .list),
        Option("volumes-from", nil, .list), Option("pid", nil, .value), Option("ipc", nil, .value),
        Option("uts", nil, .value), Option("oom-score-adj", nil, .value), Option("quiet", "q"),
        Option("detach-keys", nil, .value),
    ]

    static let run = Command(
        name: "run", usage: "berth run [OPTIONS] IMAGE [COMMAND] [ARG...]",
        summary: "Create and run a new container from an image",
        options: createOptions + [Option("detach", "d"), Option("rm"), Option("sig-proxy", nil, .flag)],
        interspersed: false, minArgs: 1, failureCode: 125
    ) { cli, args in
        try runContainer(cli, args)
    }

    static let create = Command(
        name: "create", usage: "berth create [OPTIONS] IMAGE [COMMAND] [ARG...]", summary: "Create a new container",
        options: createOptions, interspersed: false, minArgs: 1, failureCode: 125
    ) { cli, args in
        let config = try ContainerConfig(args, environment: cli.environment, terminal: Terminal.size(1))
        cli.out(try createContainer(cli, config, args) + "\n")
        return 0
    }

    /// POST /containers/create; a missing image is pulled first (`--pull`), as docker does.
    static func createContainer(_ cli: CLI, _ config: ContainerConfig, _ args: Arguments) throws -> String {
        let client = try cli.client()
        let policy = args.value("pull") ?? "missing"
        guard ["missing", "always", "never"].contains(policy) else {
            throw CLIError("berth: invalid pull option: '\(policy)': must be one of \"always\", \"missing\" or \"never\"", code: 125)
        }
        let reference = ImageReference(config.image)
        if policy == "always" { try ImageCommands.pull(cli, reference, quiet: args.flag("quiet"), platform: args.value("platform"), toStderr: true) }
        let query: EngineClient.Query = [("name", args.value("name")), ("platform", args.value("platform"))]
        let answer: JSON
        do {
            answer = try client.json("POST", "/containers/create", query: query, json: config.body)
        } catch {
            guard error.kind == .daemon && error.status == 404 && policy == "missing"
                && error.message.lowercased().contains("no such image") else { throw error }
            cli.err("Unable to find image '\(reference.familiar)' locally\n")
            try ImageCommands.pull(cli, reference, quiet: args.flag("quiet"), platform: args.value("platform"), toStderr: true)
            answer = try client.json("POST", "/containers/create", query: query, json: config.body)
        }
        for w in answer["Warnings"]?.array ?? [] {
            if let w = w.string, !w.isEmpty { cli.err("WARNING: \(w)\n") }
        }
        guard let id = answer["Id"]?.string else { throw CLIError("berth: the daemon answered no container ID", code: 125) }
        return id
    }

    /// docker's run: create, then (unless detached) wait-registration, attach, start, stream,
    /// and exit with the container's own status.
    static func runContainer(_ cli: CLI, _ args: Arguments) throws -> Int32 {
        let client = try cli.client()
        let detach = args.flag("detach")
        if detach && args.has("attach") {
            throw CLIError("berth: conflicting options: cannot specify both --attach and --detach", code: 125)
        }
        var config = try ContainerConfig(args, environment: cli.environment, terminal: Terminal.size(1))
        config.autoRemove = args.flag("rm")
        if config.tty && config.openStdin && !Terminal.isTerminal(0) {
            throw CLIError("berth: the input device is not a TTY", code: 1)
        }
        if detach { config.detach() }
        let id = try createContainer(cli, config, args)
        if detach {
            try startContainer(client, id, autoRemove: config.autoRemove)
            cli.out(id + "\n")
            return 0
        }
        return try attachStartWait(cli, id: id, tty: config.tty, stdin: config.openStdin, start: true,
                                   autoRemove: config.autoRemove, detachKeys: args.value("detach-keys"),
                                   sigProxy: args.value("sig-proxy") != "false", streams: config.attachStreams)
    }

    /// POST /start, translating a start failure to docker's 125/126/127.
    static func startContainer(_ client: EngineClient, _ id: String, autoRemove: Bool) throws {
        do {
            _ = try client.call("POST", "/containers/\(id)/start").body()
        } catch {
            guard error.kind == .daemon else { throw error }
            if autoRemove { _ = try? client.call("DELETE", "/containers/\(id)", query: [("force", "1")]).body() }
            throw CLIError("berth: \(error.description)", code: startFailureCode(error.message))
        }
    }

    /// docker's rule: a missing executable or file is 127, a permission problem 126, the rest 125.
    static func startFailureCode(_ message: String) -> Int32 {
        if message.contains("executable file not found") || message.contains("no such file or directory")
            || message.contains("system cannot find the file specified") {
            return 127
        }
        if message.contains("permission denied") || message.contains("is a directory") { return 126 }
        return 125
    }

    /// Attaches, optionally starts, pumps the streams and returns the exit status. The wait is
    /// registered before the start, so a short-lived container's exit cannot be missed.
    static func attachStartWait(_ cli: CLI, id: String, tty: Bool, stdin: Bool, start: Bool, autoRemove: Bool,
                                detachKeys: String?, sigProxy: Bool, streams: Set<String>) throws -> Int32 {
        let client = try cli.client()
        let path = "/containers/\(id)"
        let waiter = try client.call("POST", "\(path)/wait", query: [("condition", autoRemove ? "removed" : "next-exit")])
        let attached = try client.hijack("\(path)/attach", query: [
            ("stream", "1"), ("stdin", stdin ? "1" : nil), ("stdout", streams.contains("stdout") ? "1" : nil),
            ("stderr", streams.contains("stderr") ? "1" : nil), ("detachKeys", detachKeys),
        ])
        let keys = try detachSequence(detachKeys)
        let session = StreamSession(response: attached, forwardStdin: stdin, tty: tty, detachSequence: keys)
        let outcome = try withTerminal(raw: tty && stdin, resize: tty ? { rows, cols in
            _ = try? client.call("POST", "\(path)/resize", query: [("h", String(rows)), ("w", String(cols))]).body()
        } : nil) { signalFD, resize in
            if start { try startContainer(client, id, autoRemove: autoRemove) }
            resize()
            return try session.run(signalFD: signalFD) { signo in
                if signo == SIGWINCH {
                    resize()
                } else if sigProxy && !tty {
                    _ = try? client.call("POST", "\(path)/kill", query: [("signal", String(signo))]).body()
                }
            }
        }
        if outcome == .detached { return 0 }
        return try exitStatus(waiter)
    }

    /// The status from a `/wait` answer.
    static func exitStatus(_ waiter: Response) throws -> Int32 {
        let answer = try Response.decode(try waiter.body())
        if let message = answer["Error"]?["Message"]?.string, !message.isEmpty {
            throw CLIError("berth: \(message)", code: 125)
        }
        return Int32(answer["StatusCode"]?.int ?? 0)
    }

    static func detachSequence(_ text: String?) throws -> [UInt8] {
        guard let text else { return [0x10, 0x11] }
        guard let keys = StreamSession.detachSequence(text) else {
            throw CLIError("berth: Invalid detach keys (\(text)) provided", code: 125)
        }
        return keys
    }

    /// Runs `body` with the terminal raw (when asked) and SIGWINCH, SIGINT, SIGTERM and friends
    /// routed into a pipe; restores the terminal whatever happens.
    static func withTerminal<T>(raw: Bool, resize: ((Int, Int) -> Void)?,
                                _ body: (Int32, () -> Void) throws -> T) throws -> T {
        let saved = raw && Terminal.isTerminal(0) ? Terminal.makeRaw(0) : nil
        defer { if let saved { Terminal.restore(0, saved) } }
        let signalFD = SignalPipe.install([SIGWINCH, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2])
        let doResize = {
            if let resize, let size = Terminal.size(1) ?? Terminal.size(0) { resize(size.rows, size.columns) }
        }
        return try body(signalFD, doResize)
    }

    static let start = Command(
        name: "start", usage: "berth start [OPTIONS] CONTAINER [CONTAINER...]", summary: "Start one or more stopped containers",
        options: [Option("attach", "a"), Option("interactive", "i"), Option("detach-keys", nil, .value)], minArgs: 1
    ) { cli, args in
        let client = try cli.client()
        if args.flag("attach") || args.flag("interactive") {
            guard args.positionals.count == 1 else {
                throw CLIError("you cannot start and attach multiple containers at once")
            }
            let info = try client.get("/containers/\(percentEncode(args.positionals[0]))/json")
            let id = info["Id"]?.string ?? args.positionals[0]
            let tty = info["Config"]?["Tty"]?.bool ?? false
            let stdin = args.flag("interactive") && (info["Config"]?["OpenStdin"]?.bool ?? false)
            return try attachStartWait(cli, id: id, tty: tty, stdin: stdin, start: true,
                                       autoRemove: info["HostConfig"]?["AutoRemove"]?.bool ?? false,
                                       detachKeys: args.value("detach-keys"), sigProxy: true, streams: ["stdout", "stderr"])
        }
        return forEachTarget(args.positionals) { target in
            _ = try client.call("POST", "/containers/\(percentEncode(target))/start").body()
            cli.out(target + "\n")
        }
    }

    static let attach = Command(
        name: "attach", usage: "berth attach [OPTIONS] CONTAINER",
        summary: "Attach local standard input, output, and error streams to a running container",
        options: [Option("no-stdin"), Option("sig-proxy", nil, .flag), Option("detach-keys", nil, .value)],
        minArgs: 1, maxArgs: 1
    ) { cli, args in
        let client = try cli.client()
        let info = try client.get("/containers/\(percentEncode(args.positionals[0]))/json")
        let id = info["Id"]?.string ?? args.positionals[0]
        guard info["State"]?["Running"]?.bool == true else {
            throw CLIError("You cannot attach to a stopped container, start it first")
        }
        let tty = info["Config"]?["Tty"]?.bool ?? false
        let stdin = !args.flag("no-stdin") && (info["Config"]?["OpenStdin"]?.bool ?? false)
        return try attachStartWait(cli, id: id, tty: tty, stdin: stdin, start: false,
                                   autoRemove: info["HostConfig"]?["AutoRemove"]?.bool ?? false,
                                   detachKeys: args.value("detach-keys"), sigProxy: args.value("sig-proxy") != "false",
                                   streams: ["stdout", "stderr"])
    }

    static let exec = Command(
        name: "exec", usage: "berth exec [OPTIONS] CONTAINER COMMAND [ARG...]",
        summary: "Execute a command in a running container",
        options: [Option("detach", "d"), Option("interactive", "i"), Option("tty", "t"), Option("env", "e", .list),
                  Option("env-file", nil, .list), Option("user", "u", .value), Option("workdir", "w", .value),
                  Option("privileged"), Option("detach-keys", nil, .value)],
        interspersed: false, minArgs: 2
    ) { cli, args in
        let client = try cli.client()
        let container = args.positionals[0]
        let tty = args.flag("tty"), stdin = args.flag("interactive"), detach = args.flag("detach")
        if tty && stdin && !Terminal.isTerminal(0) { throw CLIError("the input device is not a TTY") }
        var body: [(String, JSON)] = [
            ("AttachStdin", .bool(stdin && !detach)), ("AttachStdout", .bool(!detach)), ("AttachStderr", .bool(!detach)),
            ("Tty", .bool(tty)), ("Cmd", .strings(Array(args.positionals.dropFirst()))),
            ("Env", .strings(try ContainerConfig.environment(args, cli.environment))), ("Privileged", .bool(args.flag("privileged"))),
        ]
        if let u = args.value("user") { body.append(("User", .string(u))) }
        if let w = args.value("workdir") { body.append(("WorkingDir", .string(w))) }
        if let k = args.value("detach-keys") { body.append(("DetachKeys", .string(k))) }
        let size = tty ? Terminal.size(1) : nil
        if let size { body.append(("ConsoleSize", [.int(size.rows), .int(size.columns)])) }
        let created = try client.json("POST", "/containers/\(percentEncode(container))/exec", json: .object(body))
        guard let execID = created["Id"]?.string else { throw CLIError("the daemon answered no exec ID") }
        var startBody: [(String, JSON)] = [("Detach", .bool(detach)), ("Tty", .bool(tty))]
        if let size { startBody.append(("ConsoleSize", [.int(size.rows), .int(size.columns)])) }
        if detach {
            _ = try client.call("POST", "/exec/\(execID)/start", json: .object(startBody)).body()
            return 0
        }
        let stream = try client.hijack("/exec/\(execID)/start", json: .object(startBody))
        let session = StreamSession(response: stream, forwardStdin: stdin, tty: tty,
                                    detachSequence: try detachSequence(args.value("detach-keys")))
        let outcome = try withTerminal(raw: tty && stdin, resize: tty ? { rows, cols in
            _ = try? client.call("POST", "/exec/\(execID)/resize", query: [("h", String(rows)), ("w", String(cols))]).body()
        } : nil) { signalFD, resize in
            resize()
            return try session.run(signalFD: signalFD) { signo in if signo == SIGWINCH { resize() } }
        }
        if outcome == .detached { return 0 }
        let info = try client.get("/exec/\(execID)/json")
        return Int32(info["ExitCode"]?.int ?? 0)
    }
}

/// `docker run`/`create` flags as the Engine API's create body (Config + HostConfig).
struct ContainerConfig {
    var image: String
    var tty: Bool
    var openStdin: Bool
    var autoRemove = false
    var attachStreams: Set<String>
    private var config: JSONObject
    private var hostConfig: JSONObject
    private var endpointsConfig: JSONObject

    init(_ args: Arguments, environment: [String: String], terminal: (rows: Int, columns: Int)?) throws {
        image = args.positionals[0]
        tty = args.flag("tty")
        openStdin = args.flag("interactive")
        let attach = args.list("attach").map { $0.lowercased() }
        for a in attach where !["stdin", "stdout", "stderr"].contains(a) {
            throw CLIError("berth: invalid argument \"\(a)\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR", code: 125)
        }
        attachStreams = attach.isEmpty ? ["stdout", "stderr"] : Set(attach)
        if attach.contains("stdin") { openStdin = true }
        func bad(_ text: String) -> CLIError { CLIError("berth: \(text)\n\nRun 'berth run --help' for more information", code: 125) }

        var c = JSONObject()
        c["Hostname"] = args.value("hostname").map(JSON.string)
        c["Domainname"] = args.value("domainname").map(JSON.string)
        c["User"] = args.value("user").map(JSON.string)
        c["AttachStdin"] = .bool(openStdin)
        c["AttachStdout"] = .bool(attachStreams.contains("stdout"))
        c["AttachStderr"] = .bool(attachStreams.contains("stderr"))
        c["Tty"] = .bool(tty)
        c["OpenStdin"] = .bool(openStdin)
        c["StdinOnce"] = .bool(openStdin)
        c["Env"] = .strings(try Self.environment(args, environment))
        let command = Array(args.positionals.dropFirst())
        c["Cmd"] = command.isEmpty ? nil : .strings(command)
        c["Image"] = .string(image)
        c["WorkingDir"] = args.value("workdir").map(JSON.string)
        if let entrypoint = args.value("entrypoint") {
            // `--entrypoint ""` resets the image's entrypoint.
            c["Entrypoint"] = .strings([entrypoint])
        }
        var labels = JSONObject()
        for l in args.list("label") {
            let (k, v) = Self.split(l)
            labels[k] = .string(v ?? "")
        }
        c["Labels"] = .object(labels)
        c["StopSignal"] = args.value("stop-signal").map(JSON.string)
        if let t = args.value("stop-timeout") {
            guard let n = Int(t) else { throw bad("invalid argument \"\(t)\" for \"--stop-timeout\" flag") }
            c["StopTimeout"] = .int(n)
        }
        if let health = try Self.healthcheck(args, bad) { c["Healthcheck"] = health }

        var h = JSONObject()
        var binds: [String] = [], volumes = JSONObject()
        for v in args.list("volume") {
            if v.split(separator: ":").count == 1 { volumes[v] = .object(JSONObject()) } else { binds.append(v) }
        }
        if !volumes.isEmpty { c["Volumes"] = .object(volumes) }
        h["Binds"] = binds.isEmpty ? nil : .strings(binds)
        let mounts = try args.list("mount").map { spec throws -> JSON in try Self.mount(spec, bad) }
        h["Mounts"] = mounts.isEmpty ? nil : .array(mounts)
        var tmpfs = JSONObject()
        for t in args.list("tmpfs") {
            let parts = t.split(separator: ":", maxSplits: 1).map(String.init)
            tmpfs[parts[0]] = .string(parts.count > 1 ? parts[1] : "")
        }
        h["Tmpfs"] = tmpfs.isEmpty ? nil : .object(tmpfs)
        if let restart = args.value("restart") {
            let parts = restart.split(separator: ":", maxSplits: 1).map(String.init)
            guard ["no", "always", "unless-stopped", "on-failure"].contains(parts[0]) else {
                throw bad("invalid restart policy \(restart)")
            }
            var retries = 0
            if parts.count > 1 {
                guard parts[0] == "on-failure", let n = Int(parts[1]) else { throw bad("invalid restart policy format: \(restart)") }
                retries = n
            }
            h["RestartPolicy"] = .object([("Name", .string(parts[0])), ("MaximumRetryCount", .int(retries))])
        }
        if let m = args.value("memory") {
            guard let bytes = Units.ramInBytes(m) else { throw bad("invalid argument \"\(m)\" for \"-m, --memory\" flag: invalid size: '\(m)'") }
            h["Memory"] = .int64(bytes)
        }
        if let cpus = args.value("cpus") {
            guard let n = Double(cpus), n >= 0 else { throw bad("invalid argument \"\(cpus)\" for \"--cpus\" flag: failed to parse \(cpus) as a rational number") }
            h["NanoCpus"] = .int64(Int64((n * 1e9).rounded()))
        }
        if let s = args.value("cpu-shares") { h["CpuShares"] = Int(s).map(JSON.int) }
        h["CpusetCpus"] = args.value("cpuset-cpus").map(JSON.string)
        if let p = args.value("pids-limit") { h["PidsLimit"] = Int(p).map(JSON.int) }
        if let s = args.value("shm-size") {
            guard let bytes = Units.ramInBytes(s) else { throw bad("invalid argument \"\(s)\" for \"--shm-size\" flag: invalid size: '\(s)'") }
            h["ShmSize"] = .int64(bytes)
        }
        if args.flag("init") { h["Init"] = .bool(true) }
        h["Privileged"] = .bool(args.flag("privileged"))
        h["ReadonlyRootfs"] = .bool(args.flag("read-only"))
        h["CapAdd"] = args.list("cap-add").isEmpty ? nil : .strings(args.list("cap-add"))
        h["CapDrop"] = args.list("cap-drop").isEmpty ? nil : .strings(args.list("cap-drop"))
        h["SecurityOpt"] = args.list("security-opt").isEmpty ? nil : .strings(args.list("security-opt"))
        let extraHosts = try args.list("add-host").map { try Self.extraHost($0, bad) }
        h["ExtraHosts"] = extraHosts.isEmpty ? nil : .strings(extraHosts)
        let dns = try args.list("dns").map { try Self.dnsServer($0, bad) }
        h["Dns"] = dns.isEmpty ? nil : .strings(dns)
        let dnsOptions = args.list("dns-option") + args.list("dns-opt")
        h["DnsOptions"] = dnsOptions.isEmpty ? nil : .strings(dnsOptions)
        let dnsSearch = try args.list("dns-search").map { try Self.dnsSearch($0, bad) }
        h["DnsSearch"] = dnsSearch.isEmpty ? nil : .strings(dnsSearch)
        h["VolumesFrom"] = args.list("volumes-from").isEmpty ? nil : .strings(args.list("volumes-from"))
        h["PidMode"] = args.value("pid").map(JSON.string)
        h["IpcMode"] = args.value("ipc").map(JSON.string)
        h["UTSMode"] = args.value("uts").map(JSON.string)
        if let o = args.value("oom-score-adj") { h["OomScoreAdj"] = Int(o).map(JSON.int) }
        var sysctls = JSONObject()
        for s in args.list("sysctl") {
            let (k, v) = Self.split(s)
            sysctls[k] = .string(v ?? "")
        }
        if !sysctls.isEmpty { h["Sysctls"] = .object(sysctls) }
        let ulimits = try args.list("ulimit").map { u throws -> JSON in
            let (name, value) = Self.split(u)
            let limits = (value ?? "").split(separator: ":").map { Int($0) }
            guard let soft = limits.first ?? nil else { throw bad("invalid ulimit argument: \(u)") }
            let hard = limits.count > 1 ? limits[1] ?? soft : soft
            return .object([("Name", .string(name)), ("Soft", .int(soft)), ("Hard", .int(hard))])
        }
        h["Ulimits"] = ulimits.isEmpty ? nil : .array(ulimits)
        let devices = args.list("device").map { d -> JSON in
            let parts = d.split(separator: ":").map(String.init)
            return .object([("PathOnHost", .string(parts[0])), ("PathInContainer", .string(parts.count > 1 ? parts[1] : parts[0])),
                            ("CgroupPermissions", .string(parts.count > 2 ? parts[2] : "rwm"))])
        }
        h["Devices"] = devices.isEmpty ? nil : .array(devices)
        if let driver = args.value("log-driver") {
            var opts = JSONObject()
            for o in args.list("log-opt") {
                let (k, v) = Self.split(o)
                opts[k] = .string(v ?? "")
            }
            h["LogConfig"] = .object([("Type", .string(driver)), ("Config", .object(opts))])
        }
        let (mode, endpoints) = try Self.networks(args, bad)
        h["NetworkMode"] = .string(mode)
        var exposed = JSONObject(), bindings = JSONObject()
        for p in try args.list("publish").map({ try Self.standardPublish($0, bad) }) {
            for (port, binding) in try Self.publish(p, bad) {
                exposed[port] = .object(JSONObject())
                bindings[port] = .array((bindings[port]?.array ?? []) + [binding])
            }
        }
        for e in args.list("expose") {
            for port in try Self.expose(e, bad) where exposed[port] == nil { exposed[port] = .object(JSONObject()) }
        }
        if !exposed.isEmpty { c["ExposedPorts"] = .object(exposed) }
        if !bindings.isEmpty { h["PortBindings"] = .object(bindings) }
        if args.flag("publish-all") { h["PublishAllPorts"] = .bool(true) }
        if tty, let terminal { h["ConsoleSize"] = [.int(terminal.rows), .int(terminal.columns)] }
        config = c
        hostConfig = h
        endpointsConfig = endpoints
    }

    /// A detached container attaches nothing.
    mutating func detach() {
        for key in ["AttachStdin", "AttachStdout", "AttachStderr", "StdinOnce"] { config[key] = .bool(false) }
    }

    var body: JSON {
        var all = config
        var h = hostConfig
        h["AutoRemove"] = .bool(autoRemove)
        all["HostConfig"] = .object(h)
        all["NetworkingConfig"] = .object([("EndpointsConfig", .object(endpointsConfig))])
        return .object(all)
    }

    static func split(_ pair: String) -> (String, String?) {
        guard let eq = pair.firstIndex(of: "=") else { return (pair, nil) }
        return (String(pair[..<eq]), String(pair[pair.index(after: eq)...]))
    }

    /// `--env-file` lines then `-e` values; a bare `NAME` takes our own value (or is left out).
    static func environment(_ args: Arguments, _ ours: [String: String]) throws -> [String] {
        var lines: [String] = []
        for file in args.list("env-file") {
            let text: String
            do { text = try FileSystem.readString(file) } catch { throw CLIError("berth: open \(file): no such file or directory", code: 125) }
            for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
                let trimmed = line.trimming(" \t")
                if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
                lines.append(trimmed)
            }
        }
        var env: [String] = []
        for e in lines + args.list("env") {
            if e.contains("=") {
                env.append(e)
            } else if let v = ours[e] {
                env.append("\(e)=\(v)")
            }
        }
        return env
    }

    static func healthcheck(_ args: Arguments, _ bad: (String) -> CLIError) throws -> JSON? {
        if args.flag("no-healthcheck") { return .object([("Test", .strings(["NONE"]))]) }
        var h = JSONObject()
        if let cmd = args.value("health-cmd") { h["Test"] = .strings(["CMD-SHELL", cmd]) }
        for (flag, key) in [("health-interval", "Interval"), ("health-timeout", "Timeout"), ("health-start-period", "StartPeriod")] {
            guard let v = args.value(flag) else { continue }
            guard let seconds = Units.duration(v), seconds >= 0 else { throw bad("invalid argument \"\(v)\" for \"--\(flag)\" flag: time: invalid duration \"\(v)\"") }
            h[key] = .int64(Int64((seconds * 1e9).rounded()))
        }
        if let r = args.value("health-retries") {
            guard let n = Int(r) else { throw bad("invalid argument \"\(r)\" for \"--health-retries\" flag") }
            h["Retries"] = .int(n)
        }
        return h.isEmpty ? nil : .object(h)
    }

    /// `--mount type=bind,source=/a,target=/b,readonly` as an API Mount.
    static func mount(_ spec: String, _ bad: (String) -> CLIError) throws -> JSON {
        var m = JSONObject()
        var type = "volume"
        var bindOptions = JSONObject(), volumeOptions = JSONObject(), tmpfsOptions = JSONObject()
        for field in spec.split(separator: ",") {
            let (key, value) = split(String(field))
            switch key.lowercased() {
            case "type": type = value ?? ""
            case "source", "src": m["Source"] = .string(value ?? "")
            case "target", "destination", "dst": m["Target"] = .string(value ?? "")
            case "readonly", "ro": m["ReadOnly"] = .bool(value.map { $0 == "1" || $0 == "true" } ?? true)
            case "consistency": m["Consistency"] = .string(value ?? "")
            case "bind-propagation": bindOptions["Propagation"] = .string(value ?? "")
            case "volume-nocopy": volumeOptions["NoCopy"] = .bool(value.map { $0 == "1" || $0 == "true" } ?? true)
            case "volume-driver": volumeOptions["DriverConfig"] = .object([("Name", .string(value ?? ""))])
            case "tmpfs-size":
                guard let v = value, let n = Units.ramInBytes(v) else { throw bad("invalid value for tmpfs-size: \(value ?? "")") }
                tmpfsOptions["SizeBytes"] = .int64(n)
            case "tmpfs-mode":
                guard let v = value, let n = Int(v, radix: 8) else { throw bad("invalid value for tmpfs-mode: \(value ?? "")") }
                tmpfsOptions["Mode"] = .int(n)
            default: throw bad("invalid argument \"\(spec)\" for \"--mount\" flag: unexpected key '\(key)' in '\(field)'")
            }
        }
        guard ["bind", "volume", "tmpfs", "npipe", "cluster", "image"].contains(type) else {
            throw bad("invalid argument \"\(spec)\" for \"--mount\" flag: invalid mount type \"\(type)\"")
        }
        guard m["Target"] != nil else { throw bad("invalid argument \"\(spec)\" for \"--mount\" flag: target is required") }
        m["Type"] = .string(type)
        if !bindOptions.isEmpty { m["BindOptions"] = .object(bindOptions) }
        if !volumeOptions.isEmpty { m["VolumeOptions"] = .object(volumeOptions) }
        if !tmpfsOptions.isEmpty { m["TmpfsOptions"] = .object(tmpfsOptions) }
        return .object(m)
    }

    /// A `-p` in docker's long form (`published=8080,target=80,protocol=udp`) as its short one
    /// (`8080:80/udp`); the short form is left as it is.
    static func standardPublish(_ spec: String, _ bad: (String) -> CLIError) throws -> String {
        guard spec.contains("=") else { return spec }
        var params = ["protocol": "tcp"]
        for param in spec.split(separator: ",", omittingEmptySubsequences: false) {
            let (k, v) = split(String(param))
            guard let v, !k.isEmpty else {
                throw bad("invalid publish opts format (should be name=value but got '\(param)')")
            }
            params[k] = v
        }
        return "\(params["published"] ?? ""):\(params["target"] ?? "")/\(params["protocol"] ?? "")"
    }

    /// docker's `nat.ParsePortSpec`: `[ip:][hostPort[-end]:]containerPort[-end][/proto]` as
    /// (`80/tcp`, binding) pairs, one per container port. Equal ranges pair up port by port; one
    /// container port with a host range keeps the range for the daemon to pick from.
    static func publish(_ spec: String, _ bad: (String) -> CLIError) throws -> [(String, JSON)] {
        let parts = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var ip = "", host = ""
        switch parts.count {
        case 1: break
        case 2: host = parts[0]
        case 3: (ip, host) = (parts[0], parts[1])
        default: (ip, host) = (parts[..<(parts.count - 2)].joined(separator: ":"), parts[parts.count - 2])
        }
        var (proto, container) = splitProtoPort(parts[parts.count - 1])
        if ip.hasPrefix("[") {
            guard ip.hasSuffix("]"), ip.count > 1 else {
                throw bad("invalid IP address \(ip): address \(ip):: missing ']' in address")
            }
            ip = String(ip.dropFirst().dropLast())
        }
        if !ip.isEmpty && IPText.bytes(ip) == nil { throw bad("invalid IP address: \(ip)") }
        if container.isEmpty { throw bad("no port specified: \(spec)<empty>") }
        guard let (start, end) = try? portRange(container) else { throw bad("invalid containerPort: \(container)") }
        var hostStart = 0, hostEnd = 0
        if !host.isEmpty {
            guard let r = try? portRange(host) else { throw bad("invalid hostPort: \(host)") }
            (hostStart, hostEnd) = r
        }
        if !host.isEmpty && end - start != hostEnd - hostStart && end != start {
            throw bad("invalid ranges specified for container and host Ports: \(container) and \(host)")
        }
        proto = proto.lowercased()
        guard ["tcp", "udp", "sctp"].contains(proto) else { throw bad("invalid proto: \(proto)") }
        return (0...(end - start)).map { i in
            var hostPort = host.isEmpty ? "" : String(hostStart + i)
            if start == end && hostStart != hostEnd { hostPort += "-\(hostEnd)" }
            return ("\(start + i)/\(proto)", .object([("HostIp", .string(ip)), ("HostPort", .string(hostPort))]))
        }
    }

    /// `--expose PORT[-END][/proto]`: every port of the range.
    static func expose(_ spec: String, _ bad: (String) -> CLIError) throws -> [String] {
        if spec.contains(":") { throw bad("invalid port format for --expose: \(spec)") }
        let (proto, port) = splitProtoPort(spec)
        let range: (Int, Int)
        do { range = try portRange(port) } catch { throw bad("invalid range format for --expose: \(spec), error: \(error)") }
        return (range.0...range.1).map { "\($0)/\(proto)" }
    }

    /// docker's `nat.SplitProtoPort`: (`proto`, `port`), tcp when no protocol is given.
    static func splitProtoPort(_ raw: String) -> (String, String) {
        let parts = raw.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if raw.isEmpty || parts[0].isEmpty { return ("", "") }
        if parts.count == 1 { return ("tcp", raw) }
        if parts[1].isEmpty { return ("tcp", parts[0]) }
        return (parts[1], parts[0])
    }

    /// docker's `nat.ParsePortRange`: `80` or `8000-8010`, with Go's messages.
    static func portRange(_ text: String) throws(CLIError) -> (Int, Int) {
        func number(_ s: String) throws(CLIError) -> Int {
            guard !s.isEmpty, s.allSatisfy(isDigit) else {
                throw CLIError("strconv.ParseUint: parsing \(goQuote(s)): invalid syntax")
            }
            guard s.count <= 5, let n = Int(s), n <= 65535 else {
                throw CLIError("strconv.ParseUint: parsing \(goQuote(s)): value out of range")
            }
            return n
        }
        if text.isEmpty { throw CLIError("empty string specified for ports") }
        guard text.contains("-") else {
            let n = try number(text)
            return (n, n)
        }
        let parts = text.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        let start = try number(parts[0]), end = try number(parts[1])
        if end < start { throw CLIError("invalid range specified for port: \(text)") }
        return (start, end)
    }

    /// docker's `ValidateExtraHost`: `name:ip` or `name=ip` (an IPv6 address may be in
    /// brackets, `host-gateway` passes), sent as `name:ip`.
    static func extraHost(_ value: String, _ bad: (String) -> CLIError) throws -> String {
        var name: Substring, address: Substring
        if let eq = value.firstIndex(of: "=") {
            (name, address) = (value[..<eq], value[value.index(after: eq)...])
        } else if let colon = value.firstIndex(of: ":") {
            (name, address) = (value[..<colon], value[value.index(after: colon)...])
        } else {
            throw bad("invalid argument \"\(value)\" for \"--add-host\" flag: bad format for add-host: \(goQuote(value))")
        }
        if name.isEmpty || name.contains(":") {
            throw bad("invalid argument \"\(value)\" for \"--add-host\" flag: bad format for add-host: \(goQuote(value))")
        }
        if address != "host-gateway" {
            if address.count > 2 && address.hasPrefix("[") && address.hasSuffix("]") { address = address.dropFirst().dropLast() }
            if IPText.canonical(address.trimming(" \t\n\r")) == nil {
                throw bad("invalid argument \"\(value)\" for \"--add-host\" flag: invalid IP address in add-host: \(goQuote(String(address)))")
            }
        }
        return "\(name):\(address)"
    }

    /// docker's `ValidateIPAddress` for `--dns`: the address in Go's canonical form.
    static func dnsServer(_ value: String, _ bad: (String) -> CLIError) throws -> String {
        guard let ip = IPText.canonical(value.trimming(" \t\n\r")) else {
            throw bad("invalid argument \"\(value)\" for \"--dns\" flag: IP address is not correctly formatted: \(value)")
        }
        return ip
    }

    /// docker's `ValidateDNSSearch`: `.`, or a domain name (with a letter in it) without its
    /// trailing dot.
    static func dnsSearch(_ value: String, _ bad: (String) -> CLIError) throws -> String {
        let text = value.trimming(" ")
        if text == "." { return text }
        var domain = Substring(text.trimming(" \t\n\r"))
        if domain.hasSuffix(".") { domain = domain.dropLast() }
        func alnum(_ c: Character) -> Bool { c.isASCII && (c.isLetter || c.isNumber) }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        let valid = text.contains(where: { $0.isASCII && $0.isLetter }) && domain.utf8.count < 255
            && labels.allSatisfy { l in
                guard let first = l.first, let last = l.last, alnum(first), alnum(last) else { return false }
                return l.allSatisfy { alnum($0) || $0 == "-" }
            }
        guard valid else { throw bad("invalid argument \"\(value)\" for \"--dns-search\" flag: \(text) is not a valid domain") }
        return String(domain)
    }

    /// Go's `net.ParseMAC` forms: `xx:xx:…`, `xx-xx-…` or `xxxx.xxxx.…`, of 6, 8 or 20 bytes.
    static func validMAC(_ text: String) -> Bool {
        let hex = { (s: Substring, n: Int) in s.count == n && s.allSatisfy(\.isHexDigit) }
        for sep: Character in [":", "-"] where text.contains(sep) {
            let groups = text.split(separator: sep, omittingEmptySubsequences: false)
            return [6, 8, 20].contains(groups.count) && groups.allSatisfy { hex($0, 2) }
        }
        let groups = text.split(separator: ".", omittingEmptySubsequences: false)
        return [3, 4, 10].contains(groups.count) && groups.allSatisfy { hex($0, 4) }
    }

    /// A network a container joins: `--network NAME`, or docker's long form
    /// `name=NET,alias=A,ip=IP,ip6=IP,mac-address=MAC,link-local-ip=IP,driver-opt=K=V,gw-priority=N`.
    struct NetworkAttachment: Equatable {
        var target = ""
        var aliases: [String] = []
        var ipv4 = "", ipv6 = "", mac = ""
        var linkLocalIPs: [String] = []
        var driverOpts = JSONObject()
        var gwPriority = 0
    }

    /// docker's `NetworkOpt.Set`. It is long form when some `word=word` appears in it; keys are
    /// case-insensitive (docker lowercases values too, which breaks mixed-case names: not here).
    static func networkAttachment(_ value: String, _ bad: (String) -> CLIError) throws -> NetworkAttachment {
        func word(_ c: Character) -> Bool { c.isASCII && (c.isLetter || c.isNumber || c == "_") }
        let chars = Array(value)
        let long = chars.indices.contains { i in i > 0 && i < chars.count - 1 && chars[i] == "=" && word(chars[i - 1]) && word(chars[i + 1]) }
        guard long else { return NetworkAttachment(target: value) }
        func fail(_ why: String) -> CLIError { bad("invalid argument \"\(value)\" for \"--network\" flag: \(why)") }
        var n = NetworkAttachment()
        for field in value.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            let (rawKey, rawValue) = split(field)
            let key = rawKey.lowercased().trimming(" \t"), v = (rawValue ?? "").trimming(" \t")
            guard rawValue != nil, !rawKey.isEmpty else { throw fail("invalid field \(field)") }
            switch key {
            case "name": n.target = v
            case "alias": n.aliases.append(v)
            case "ip": n.ipv4 = v
            case "ip6": n.ipv6 = v
            case "mac-address": n.mac = v
            case "link-local-ip": n.linkLocalIPs.append(v)
            case "driver-opt":
                let (k, o) = split(v)
                guard let o, !k.isEmpty else { throw fail("invalid key value pair format in driver options") }
                n.driverOpts[k.lowercased().trimming(" \t")] = .string(o.trimming(" \t"))
            case "gw-priority":
                guard let p = Int(v) else { throw fail("invalid gw-priority: \(v)") }
                n.gwPriority = p
            default: throw fail("invalid field key \(key)")
            }
        }
        if n.target.isEmpty { throw fail("network name not specified") }
        return n
    }

    /// Whether a network mode names a user-defined network (not default, bridge, host, none or
    /// another container's).
    static func isUserDefined(_ mode: String) -> Bool {
        !["default", "bridge", "host", "none"].contains(mode) && !mode.hasPrefix("container:")
    }

    /// docker's `parseNetworkOpts`: the network mode (the first `--network`, else `default`) and
    /// `EndpointsConfig`. `--network-alias`, `--ip`, `--ip6`, `--mac-address` and
    /// `--link-local-ip` go to the first network; a lone network with nothing to say about its
    /// endpoint gets no entry, and no `--network` at all gets an entry for `default`.
    static func networks(_ args: Arguments, _ bad: (String) -> CLIError) throws -> (String, JSONObject) {
        if let mac = args.value("mac-address"), !mac.isEmpty, !validMAC(mac.trimming(" \t")) {
            throw bad("\(mac) is not a valid mac address")
        }
        let given = try (args.list("network") + args.list("net")).map { try networkAttachment($0, bad) }
        func applyFlags(_ n: inout NetworkAttachment) throws {
            func conflict(_ what: String) -> CLIError { bad("conflicting options: cannot specify both \(what)") }
            let aliases = args.list("network-alias"), linkLocal = args.list("link-local-ip")
            let ipv4 = args.value("ip") ?? "", ipv6 = args.value("ip6") ?? "", mac = args.value("mac-address") ?? ""
            if !n.aliases.isEmpty && !aliases.isEmpty { throw conflict("--network-alias and per-network alias") }
            if !n.ipv4.isEmpty && !ipv4.isEmpty { throw conflict("--ip and per-network IPv4 address") }
            if !n.ipv6.isEmpty && !ipv6.isEmpty { throw conflict("--ip6 and per-network IPv6 address") }
            if !n.mac.isEmpty && !mac.isEmpty { throw conflict("--mac-address and per-network MAC address") }
            if !n.linkLocalIPs.isEmpty && !linkLocal.isEmpty {
                throw conflict("--link-local-ip and per-network link-local IP addresses")
            }
            if !aliases.isEmpty { n.aliases = aliases }
            if !ipv4.isEmpty { n.ipv4 = ipv4 }
            if !ipv6.isEmpty { n.ipv6 = ipv6 }
            if !mac.isEmpty { n.mac = mac }
            if !linkLocal.isEmpty { n.linkLocalIPs = linkLocal }
        }
        func endpoint(_ n: NetworkAttachment) throws -> JSON {
            if n.target.trimming(" \t\n\r").isEmpty { throw bad("no name set for network") }
            if !isUserDefined(n.target) && !n.aliases.isEmpty {
                throw bad("network-scoped aliases are only supported for user-defined networks")
            }
            if !n.mac.isEmpty && !validMAC(n.mac.trimming(" \t")) { throw bad("\(n.mac) is not a valid mac address") }
            var e = JSONObject(), ipam = JSONObject()
            if !n.ipv4.isEmpty { ipam["IPv4Address"] = .string(n.ipv4) }
            if !n.ipv6.isEmpty { ipam["IPv6Address"] = .string(n.ipv6) }
            if !n.linkLocalIPs.isEmpty { ipam["LinkLocalIPs"] = .strings(n.linkLocalIPs) }
            if !ipam.isEmpty { e["IPAMConfig"] = .object(ipam) }
            if !n.aliases.isEmpty { e["Aliases"] = .strings(n.aliases) }
            if !n.mac.isEmpty { e["MacAddress"] = .string(n.mac) }
            if !n.driverOpts.isEmpty { e["DriverOpts"] = .object(n.driverOpts) }
            if n.gwPriority != 0 { e["GwPriority"] = .int(n.gwPriority) }
            return .object(e)
        }
        var endpoints = JSONObject()
        guard let first = given.first else {
            var n = NetworkAttachment(target: "default")
            try applyFlags(&n)
            endpoints["default"] = try endpoint(n)
            return ("default", endpoints)
        }
        var userDefined = false, predefined = false
        for (i, var n) in given.enumerated() {
            if isUserDefined(n.target) { userDefined = true } else { predefined = true }
            if i == 0 { try applyFlags(&n) }
            let e = try endpoint(n)
            if endpoints[n.target] != nil { throw bad("network \(goQuote(n.target)) is specified multiple times") }
            if i == 0 && given.count == 1 && e == .object(JSONObject()) { continue }
            endpoints[n.target] = e
        }
        if userDefined && predefined {
            throw bad("conflicting options: cannot attach both user-defined and non-user-defined network-modes")
        }
        return (first.target, endpoints)
    }
}
