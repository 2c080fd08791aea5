import BerthClient
import Glibc

/// Container commands other than run/create/start/exec/attach: listing, logs, lifecycle,
/// inspect, top, stats.
enum ContainerCommands {
    static let all: [Command] = [ps, logs, stop, restart, kill, rm, pause, unpause, rename, wait, top, stats,
                                 inspect, prune, port, port.named("container port")]

    static let psHeaders = [
        "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
        "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
        "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS", "LocalVolumes": "LOCAL VOLUMES",
    ]

    static let ps = Command(
        name: "ps", usage: "berth ps [OPTIONS]", summary: "List containers",
        options: [Option("all", "a"), Option("quiet", "q"), Option("last", "n", .value), Option("latest", "l"),
                  Option("size", "s"), Option("no-trunc"), Option("filter", "f", .list), Option("format", nil, .value)],
        maxArgs: 0
    ) { cli, args in
        var limit = args.value("last").flatMap { Int($0) } ?? -1
        if args.flag("latest") { limit = 1 }
        let all = args.flag("all") || limit > 0
        // Sizes cost the daemon a walk of each container's layer: only when they are shown.
        let format = args.format ?? ""
        let size = args.flag("size") || format.contains(".Size") || format == "json" || format.contains("json .}}")
        let list = try cli.client().get("/containers/json", query: [
            ("all", all ? "1" : nil), ("limit", limit > 0 ? String(limit) : nil), ("size", size ? "1" : nil),
            ("filters", try filtersJSON(args.list("filter"))),
        ]).array ?? []
        let trunc = !args.flag("no-trunc")
        if args.flag("quiet") && args.format == nil {
            for c in list { cli.out((trunc ? shortID(c["Id"]?.string ?? "") : c["Id"]?.string ?? "") + "\n") }
            return 0
        }
        let now = Units.now()
        let rows = list.map { row($0, trunc: trunc, now: now) }
        var table = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
        if size { table += "\t{{.Size}}" }
        try printListing(rows: rows, format: args.flag("quiet") ? "{{.ID}}" : args.format, defaultTable: table, headers: psHeaders)
        return 0
    }

    /// One `ps` row: docker's container formatting context as strings, keys sorted as its JSON.
    static func row(_ c: JSON, trunc: Bool, now: Double) -> JSON {
        let id = c["Id"]?.string ?? ""
        var names = (c["Names"]?.array ?? []).compactMap { $0.string.map { String($0.drop(while: { $0 == "/" })) } }
        if trunc { names = names.filter { !$0.contains("/") } }
        let created = Int64(c["Created"]?.int ?? 0)
        var command = c["Command"]?.string ?? ""
        if trunc { command = ellipsis(command, 20) }
        var image = c["Image"]?.string ?? ""
        if trunc, image.hasPrefix("sha256:") { image = shortID(image) }
        let labels = (c["Labels"]?.object?.pairs ?? []).map { "\($0.0)=\($0.1.string ?? "")" }.sorted()
        let mounts = (c["Mounts"]?.array ?? []).compactMap { m -> String? in
            let name = m["Name"]?.string ?? ""
            return name.isEmpty ? m["Source"]?.string : (trunc ? ellipsis(name, 15) : name)
        }
        let networks = c["NetworkSettings"]?["Networks"]?.object?.keys.sorted() ?? []
        // Daemons leave zero sizes out (omitempty).
        var size = Units.humanSize(c["SizeRw"]?.double ?? 0)
        if let v = c["SizeRootFs"]?.double, v > 0 { size += " (virtual \(Units.humanSize(v)))" }
        let fields: [(String, String)] = [
            ("Command", goQuote(command)), ("CreatedAt", Units.goTime(unix: created)),
            ("ID", trunc ? shortID(id) : id), ("Image", image), ("Labels", labels.joined(separator: ",")),
            ("LocalVolumes", String((c["Mounts"]?.array ?? []).filter { $0["Driver"]?.string == "local" }.count)),
            ("Mounts", mounts.joined(separator: ",")), ("Names", names.joined(separator: ",")),
            ("Networks", networks.joined(separator: ",")), ("Ports", ports(c["Ports"]?.array ?? [])),
            ("RunningFor", Units.humanDuration(seconds: now - Double(created)) + " ago"), ("Size", size),
            ("State", c["State"]?.string ?? ""), ("Status", c["Status"]?.string ?? ""),
        ]
        return .object(fields.map { ($0.0, JSON.string($0.1)) })
    }

    /// docker's PORTS column (its `DisplayablePorts`): sorted by private port, IP, public port
    /// and protocol; runs of consecutive unpublished ports, or of ports published on the same
    /// number, become ranges (`80-81/tcp`, `0.0.0.0:80-81->80-81/tcp`); ports published on
    /// another number come last, one each (`0.0.0.0:8080->80/tcp`).
    static func ports(_ list: [JSON]) -> String {
        typealias Port = (priv: Int, pub: Int, ip: String, type: String)
        let sorted = list.map { p -> Port in
            (p["PrivatePort"]?.int ?? 0, p["PublicPort"]?.int ?? 0, p["IP"]?.string ?? "", p["Type"]?.string ?? "")
        }.sorted { a, b in
            if a.priv != b.priv { return a.priv < b.priv }
            if a.ip != b.ip { return a.ip < b.ip }
            if a.pub != b.pub { return a.pub < b.pub }
            return a.type < b.type
        }
        func join(_ host: String, _ port: String) -> String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
        func group(_ key: String, _ first: Int, _ last: Int) -> String {
            let parts = key.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            let ip = parts.count > 1 ? parts[0] : "", type = parts.count > 1 ? parts[1] : parts[0]
            var range = String(first)
            if first != last { range += "-\(last)" }
            if !ip.isEmpty { range = join(ip, range) + "->" + range }
            return range + "/" + type
        }
        var groups: [String: (first: Int, last: Int)] = [:], order: [String] = []
        var result: [String] = [], mappings: [String] = []
        for p in sorted {
            var key = p.type
            if !p.ip.isEmpty {
                if p.pub != p.priv {
                    mappings.append(join(p.ip, String(p.pub)) + "->\(p.priv)/\(p.type)")
                    continue
                }
                key = "\(p.ip)/\(p.type)"
            }
            guard let g = groups[key] else {
                groups[key] = (p.priv, p.priv)
                order.append(key)
                continue
            }
            if p.priv == g.last + 1 {
                groups[key] = (g.first, p.priv)
                continue
            }
            result.append(group(key, g.first, g.last))
            groups[key] = (p.priv, p.priv)
        }
        for key in order {
            if let g = groups[key] { result.append(group(key, g.first, g.last)) }
        }
        return (result + mappings).joined(separator: ", ")
    }

    static let port = Command(
        name: "port", usage: "berth port CONTAINER [PRIVATE_PORT[/PROTO]]",
        summary: "List port mappings or a specific mapping for the container", minArgs: 1, maxArgs: 2
    ) { cli, args in
        let container = args.positionals[0]
        let info = try cli.client().get("/containers/\(percentEncode(container))/json")
        let lines = try portLines(info["NetworkSettings"]?["Ports"]?.object ?? JSONObject(), container: container,
                                  port: args.positionals.count > 1 ? args.positionals[1] : nil)
        if !lines.isEmpty { cli.out(lines.joined(separator: "\n") + "\n") }
        return 0
    }

    /// docker port's lines from inspect's `NetworkSettings.Ports`: `80/tcp -> 0.0.0.0:8080` for
    /// every binding, or just `0.0.0.0:8080` for the one port asked about; in natural order.
    static func portLines(_ ports: JSONObject, container: String, port: String?) throws(CLIError) -> [String] {
        func join(_ binding: JSON) -> String {
            let ip = binding["HostIp"]?.string ?? "", port = binding["HostPort"]?.string ?? ""
            return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
        }
        var out: [String] = []
        if let port {
            let number: String, proto: String
            if let slash = port.firstIndex(of: "/") {
                number = String(port[..<slash])
                proto = String(port[port.index(after: slash)...])
            } else {
                (number, proto) = (port, "")
            }
            guard !number.isEmpty, number.allSatisfy(isDigit), let n = Int(number), n <= 65535 else {
                let why = !number.isEmpty && number.allSatisfy(isDigit) ? "value out of range" : "invalid syntax"
                throw CLIError("Error: invalid port (\(number)): strconv.ParseUint: parsing \(goQuote(number)): \(why)")
            }
            let bindings = ports["\(number)/\(proto.isEmpty ? "tcp" : proto)"]?.array ?? []
            guard !bindings.isEmpty else { throw CLIError("Error: No public port '\(port)' published for \(container)") }
            out = bindings.map(join)
        } else {
            for (key, bindings) in ports.pairs {
                for b in bindings.array ?? [] { out.append("\(key) -> \(join(b))") }
            }
        }
        return out.sorted(by: naturalLess)
    }

    static let logs = Command(
        name: "logs", usage: "berth logs [OPTIONS] CONTAINER", summary: "Fetch the logs of a container",
        options: [Option("follow", "f"), Option("tail", "n", .value), Option("since", nil, .value),
                  Option("until", nil, .value), Option("timestamps", "t"), Option("details")],
        minArgs: 1, maxArgs: 1
    ) { cli, args in
        let client = try cli.client()
        let id = args.positionals[0]
        let info = try client.get("/containers/\(percentEncode(id))/json")
        let now = Units.now()
        func time(_ name: String) throws -> String? {
            guard let v = args.value(name) else { return nil }
            guard let t = Units.timestamp(v, now: now) else {
                throw CLIError("invalid value for \"\(name)\": failed to parse value as time or duration: \"\(v)\"")
            }
            return t
        }
        let response = try client.call("GET", "/containers/\(percentEncode(id))/logs", query: [
            ("stdout", "1"), ("stderr", "1"), ("follow", args.flag("follow") ? "1" : nil),
            ("tail", args.value("tail")), ("since", try time("since")), ("until", try time("until")),
            ("timestamps", args.flag("timestamps") ? "1" : nil), ("details", args.flag("details") ? "1" : nil),
        ])
        let tty = info["Config"]?["Tty"]?.bool ?? false
        var decoder = FrameDecoder()
        while let bytes = try response.next() {
            if tty {
                writeAll(1, bytes)
            } else {
                for frame in decoder.feed(bytes) { writeAll(frame.stream == 2 ? 2 : 1, frame.payload) }
            }
        }
        return 0
    }

    /// A command that posts to `/containers/{id}/<action>` for each argument and echoes it.
    static func each(_ name: String, _ summary: String, action: String, options: [Option] = [],
                     query: @escaping @Sendable (Arguments) throws -> EngineClient.Query = { _ in [] }) -> Command {
        Command(name: name, usage: "berth \(name) [OPTIONS] CONTAINER [CONTAINER...]", summary: summary,
                options: options, minArgs: 1) { cli, args in
            let client = try cli.client()
            let q = try query(args)
            return forEachTarget(args.positionals) { target in
                _ = try client.call("POST", "/containers/\(percentEncode(target))/\(action)", query: q).body()
                cli.out(target + "\n")
            }
        }
    }

    static let stop = each("stop", "Stop one or more running containers", action: "stop",
                           options: [Option("time", "t", .value), Option("timeout", nil, .value), Option("signal", "s", .value)]) {
        [("t", $0.value("time") ?? $0.value("timeout")), ("signal", $0.value("signal"))]
    }
    static let restart = each("restart", "Restart one or more containers", action: "restart",
                              options: [Option("time", "t", .value), Option("timeout", nil, .value), Option("signal", "s", .value)]) {
        [("t", $0.value("time") ?? $0.value("timeout")), ("signal", $0.value("signal"))]
    }
    static let kill = each("kill", "Kill one or more running containers", action: "kill",
                           options: [Option("signal", "s", .value)]) { [("signal", $0.value("signal"))] }
    static let pause = each("pause", "Pause all processes within one or more containers", action: "pause")
    static let unpause = each("unpause", "Unpause all processes within one or more containers", action: "unpause")

    static let rm = Command(
        name: "rm", usage: "berth rm [OPTIONS] CONTAINER [CONTAINER...]", summary: "Remove one or more containers",
        options: [Option("force", "f"), Option("volumes", "v"), Option("link", "l")], minArgs: 1
    ) { cli, args in
        let client = try cli.client()
        return forEachTarget(args.positionals) { target in
            _ = try client.call("DELETE", "/containers/\(percentEncode(target))", query: [
                ("force", args.flag("force") ? "1" : nil), ("v", args.flag("volumes") ? "1" : nil),
                ("link", args.flag("link") ? "1" : nil),
            ]).body()
            cli.out(target + "\n")
        }
    }

    static let rename = Command(
        name: "rename", usage: "berth rename CONTAINER NEW_NAME", summary: "Rename a container",
        minArgs: 2, maxArgs: 2
    ) { cli, args in
        let new = args.positionals[1]
        guard !new.isEmpty else { throw CLIError("Error: neither old nor new names may be empty") }
        try cli.client().json("POST", "/containers/\(percentEncode(args.positionals[0]))/rename", query: [("name", new)])
        return 0
    }

    static let wait = Command(
        name: "wait", usage: "berth wait CONTAINER [CONTAINER...]",
        summary: "Block until one or more containers stop, then print their exit codes", minArgs: 1
    ) { cli, args in
        let client = try cli.client()
        return forEachTarget(args.positionals) { target in
            let answer = try client.json("POST", "/containers/\(percentEncode(target))/wait")
            if let message = answer["Error"]?["Message"]?.string, !message.isEmpty { throw CLIError(message) }
            cli.out("\(answer["StatusCode"]?.int ?? 0)\n")
        }
    }

    static let top = Command(
        name: "top", usage: "berth top CONTAINER [ps OPTIONS]", summary: "Display the running processes of a container",
        interspersed: false, minArgs: 1
    ) { cli, args in
        let psArgs = args.positionals.dropFirst().joined(separator: " ")
        let answer = try cli.client().get("/containers/\(percentEncode(args.positionals[0]))/top",
                                          query: [("ps_args", psArgs.isEmpty ? nil : psArgs)])
        var text = (answer["Titles"]?.array ?? []).map { $0.string ?? "" }.joined(separator: "\t") + "\n"
        for p in answer["Processes"]?.array ?? [] {
            text += (p.array ?? []).map { $0.string ?? "" }.joined(separator: "\t") + "\n"
        }
        // docker's top uses a tabwriter with minimum width 20 and padding 1.
        cli.out(tabulate(text, minWidth: 20, padding: 1))
        return 0
    }

    static let inspect = Command(
        name: "inspect", usage: "berth inspect [OPTIONS] NAME|ID [NAME|ID...]",
        summary: "Return low-level information on Docker objects",
        options: [Option("format", "f", .value), Option("size", "s"), Option("type", nil, .value)], minArgs: 1
    ) { cli, args in
        try inspectObjects(cli, args, kinds: args.value("type").map { [$0] } ?? ["container", "image", "volume", "network"])
    }

    /// Inspects each argument as the first kind that knows it; prints an indented JSON array or
    /// the `--format` per object, as docker does.
    static func inspectObjects(_ cli: CLI, _ args: Arguments, kinds: [String]) throws -> Int32 {
        let client = try cli.client()
        for kind in kinds where !["container", "image", "volume", "network"].contains(kind) {
            throw CLIError("\"\(kind)\" is not a valid value for --type")
        }
        var found: [JSON] = []
        var status: Int32 = 0
        var errors: [String] = []
        for target in args.positionals {
            var value: JSON?
            for kind in kinds {
                let path: String
                switch kind {
                case "container": path = "/containers/\(percentEncode(target))/json"
                case "image": path = "/images/\(target)/json"
                case "volume": path = "/volumes/\(percentEncode(target))"
                default: path = "/networks/\(percentEncode(target))"
                }
                do {
                    value = try client.get(path, query: kind == "container" && args.flag("size") ? [("size", "1")] : [])
                    break
                } catch {
                    if error.kind == .daemon && error.status == 404 { continue }
                    throw error
                }
            }
            if let value {
                found.append(value)
            } else {
                status = 1
                errors.append(kinds.count == 1 ? "Error: No such \(kinds[0]): \(target)" : "Error: No such object: \(target)")
            }
        }
        if let format = args.format {
            for v in found { cli.out(try render(format, v) + "\n") }
        } else {
            cli.out(JSON.array(found).indented() + "\n")
        }
        for e in errors { cli.err(e + "\n") }
        return status
    }

    static let prune = Command(
        name: "container prune", usage: "berth container prune [OPTIONS]", summary: "Remove all stopped containers",
        options: [Option("force", "f"), Option("filter", nil, .list)], maxArgs: 0
    ) { cli, args in
        guard try confirm(cli, args, "WARNING! This will remove all stopped containers.") else { return 0 }
        let answer = try cli.client().json("POST", "/containers/prune", query: [("filters", try filtersJSON(args.list("filter")))])
        printPruned(cli, "Deleted Containers:", answer["ContainersDeleted"], reclaimed: answer["SpaceReclaimed"])
        return 0
    }

    // MARK: stats

    static let statsHeaders = [
        "Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT",
        "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
    ]

    static let stats = Command(
        name: "stats", usage: "berth stats [OPTIONS] [CONTAINER...]", summary: "Display a live stream of container(s) resource usage statistics",
        options: [Option("all", "a"), Option("no-stream"), Option("no-trunc"), Option("format", nil, .value)]
    ) { cli, args in
        let client = try cli.client()
        var targets = args.positionals
        if targets.isEmpty {
            let list = try client.get("/containers/json", query: [("all", args.flag("all") ? "1" : nil)]).array ?? []
            targets = list.compactMap { $0["Id"]?.string }
        }
        let table = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
        if args.flag("no-stream") {
            var rows: [JSON] = []
            var status: Int32 = 0
            for t in targets {
                do {
                    let s = try client.get("/containers/\(percentEncode(t))/stats", query: [("stream", "0")])
                    rows.append(statsRow(s, container: t, trunc: !args.flag("no-trunc")))
                } catch {
                    cli.err("\(error)\n")
                    status = 1
                }
            }
            try printListing(rows: rows, format: args.format, defaultTable: table, headers: statsHeaders)
            return status
        }
        // Streaming: one stats stream per container, redrawn whenever any of them reports.
        var streams: [(String, Response)] = []
        for t in targets {
            streams.append((t, try client.call("GET", "/containers/\(percentEncode(t))/stats", query: [("stream", "1")])))
        }
        var latest: [String: JSON] = [:]
        while !streams.isEmpty {
            var fds = streams.map { pollfd(fd: $0.1.connection.fd, events: Int16(POLLIN), revents: 0) }
            if poll(&fds, nfds_t(fds.count), -1) < 0 { continue }
            for (i, p) in fds.enumerated().reversed() where p.revents != 0 {
                let (name, response) = streams[i]
                if let s = try response.nextJSONLine() {
                    latest[name] = statsRow(s, container: name, trunc: !args.flag("no-trunc"))
                } else {
                    streams.remove(at: i)
                }
            }
            // Clear the screen and home the cursor, as docker's live view does.
            cli.out("\u{1B}[2J\u{1B}[H")
            try printListing(rows: targets.compactMap { latest[$0] }, format: args.format, defaultTable: table, headers: statsHeaders)
        }
        return 0
    }

    /// docker's stats row: CPU% from the delta to the previous sample, memory without the page
    /// cache (inactive_file), network and block I/O totals.
    static func statsRow(_ s: JSON, container: String, trunc: Bool) -> JSON {
        let cpu = s["cpu_stats"], pre = s["precpu_stats"]
        let cpuDelta = (cpu?["cpu_usage"]?["total_usage"]?.double ?? 0) - (pre?["cpu_usage"]?["total_usage"]?.double ?? 0)
        let systemDelta = (cpu?["system_cpu_usage"]?.double ?? 0) - (pre?["system_cpu_usage"]?.double ?? 0)
        var online = cpu?["online_cpus"]?.double ?? 0
        if online == 0 { online = Double(cpu?["cpu_usage"]?["percpu_usage"]?.array?.count ?? 0) }
        let cpuPercent = systemDelta > 0 && cpuDelta > 0 ? cpuDelta / systemDelta * online * 100 : 0
        let mem = s["memory_stats"]
        var usage = mem?["usage"]?.double ?? 0
        let cache = mem?["stats"]?["total_inactive_file"]?.double ?? mem?["stats"]?["inactive_file"]?.double ?? 0
        if cache < usage { usage -= cache }
        let limit = mem?["limit"]?.double ?? 0
        var rx = 0.0, tx = 0.0
        for (_, n) in s["networks"]?.object?.pairs ?? [] {
            rx += n["rx_bytes"]?.double ?? 0
            tx += n["tx_bytes"]?.double ?? 0
        }
        var readBytes = 0.0, writeBytes = 0.0
        for e in s["blkio_stats"]?["io_service_bytes_recursive"]?.array ?? [] {
            switch e["op"]?.string?.lowercased() {
            case "read": readBytes += e["value"]?.double ?? 0
            case "write": writeBytes += e["value"]?.double ?? 0
            default: break
            }
        }
        let id = s["id"]?.string ?? container
        let fields: [(String, String)] = [
            ("BlockIO", "\(Units.humanSize(readBytes)) / \(Units.humanSize(writeBytes))"),
            ("CPUPerc", fixed(cpuPercent, 2) + "%"), ("Container", container), ("ID", trunc ? shortID(id) : id),
            ("MemPerc", fixed(limit > 0 ? usage / limit * 100 : 0, 2) + "%"),
            ("MemUsage", "\(Units.bytesSize(usage)) / \(Units.bytesSize(limit))"),
            ("Name", String((s["name"]?.string ?? container).drop(while: { $0 == "/" }))),
            ("NetIO", "\(Units.humanSize(rx)) / \(Units.humanSize(tx))"),
            ("PIDs", String(s["pids_stats"]?["current"]?.int ?? 0)),
        ]
        return .object(fields.map { ($0.0, JSON.string($0.1)) })
    }
}

/// `%.{digits}f`.
func fixed(_ value: Double, _ digits: Int) -> String {
    let scale = pow(10.0, Double(digits))
    let scaled = Int64((abs(value) * scale).rounded())
    let whole = scaled / Int64(scale), frac = String(scaled % Int64(scale))
    return (value < 0 && scaled > 0 ? "-" : "") + "\(whole)." + String(repeating: "0", count: digits - frac.count) + frac
}

/// The prune prompt: `-f` skips it; otherwise the answer must be y or yes.
func confirm(_ cli: CLI, _ args: Arguments, _ warning: String) throws -> Bool {
    if args.flag("force") { return true }
    cli.out(warning + "\nAre you sure you want to continue? [y/N] ")
    var line: [UInt8] = []
    var byte: UInt8 = 0
    while read(0, &byte, 1) == 1, byte != 0x0A { line.append(byte) }
    let answer = String(decoding: line, as: UTF8.self).trimming(" \r").lowercased()
    return answer == "y" || answer == "yes"
}

/// docker's prune report: the heading, one line per item, then the reclaimed space.
func printPruned(_ cli: CLI, _ heading: String, _ items: JSON?, reclaimed: JSON?, lines: [String]? = nil) {
    let list = lines ?? (items?.array ?? []).compactMap(\.string)
    if !list.isEmpty { cli.out(heading + "\n" + list.map { $0 + "\n" }.joined() + "\n") }
    cli.out("Total reclaimed space: \(Units.humanSize(reclaimed?.double ?? 0))\n")
}
