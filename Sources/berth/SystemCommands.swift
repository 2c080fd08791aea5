import BerthClient
import BerthOS
import Glibc

/// version, info, events, system df, system prune.
enum SystemCommands {
    static let all: [Command] = [version, info, events, df, prune]

    static var clientInfo: JSON {
        var u = utsname()
        uname(&u)
        let machine = withUnsafeBytes(of: &u.machine) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        let arch = ["x86_64": "amd64", "aarch64": "arm64"][machine] ?? machine
        return .object([("Platform", .object([("Name", "Berth")])), ("Version", .string(BerthVersion.version)),
                        ("ApiVersion", .string(EngineClient.maxAPIVersion)), ("Os", "linux"), ("Arch", .string(arch))])
    }

    static let version = Command(
        name: "version", usage: "berth version [OPTIONS]", summary: "Show the Berth version information",
        options: [Option("format", "f", .value)], maxArgs: 0
    ) { cli, args in
        let client = clientInfo
        var server: JSON = .null
        var serverError: Error?
        do { server = try cli.client().get("/version") } catch { serverError = error }
        if let format = args.format {
            cli.out(try render(format, .object([("Client", client), ("Server", server)])) + "\n")
            if let serverError { throw serverError }
            return 0
        }
        var text = """
            Client:
             Version:           \(client["Version"]?.string ?? "")
             API version:       \(try cli.client().apiVersion ?? EngineClient.maxAPIVersion)
             OS/Arch:           \(client["Os"]?.string ?? "")/\(client["Arch"]?.string ?? "")

            """
        if serverError == nil {
            text += "\nServer: \(server["Platform"]?["Name"]?.string ?? "")\n"
            for component in server["Components"]?.array ?? [] {
                let name = component["Name"]?.string ?? ""
                text += " \(name):\n"
                var details: [(String, String)] = [("Version", component["Version"]?.string ?? "")]
                if name == "Engine" {
                    details += [
                        ("API version", "\(server["ApiVersion"]?.string ?? "") (minimum version \(server["MinAPIVersion"]?.string ?? ""))"),
                        ("Go version", server["GoVersion"]?.string ?? ""), ("Git commit", server["GitCommit"]?.string ?? ""),
                        ("Built", server["BuildTime"]?.string ?? ""),
                        ("OS/Arch", "\(server["Os"]?.string ?? "")/\(server["Arch"]?.string ?? "")"),
                        ("Experimental", String(server["Experimental"]?.bool ?? false)),
                    ]
                } else if let commit = component["Details"]?["GitCommit"]?.string {
                    details.append(("GitCommit", commit))
                }
                for (k, v) in details {
                    text += "  \(k):" + String(repeating: " ", count: max(1, 17 - k.count)) + v + "\n"
                }
            }
        }
        cli.out(text)
        if let serverError { throw serverError }
        return 0
    }

    static let info = Command(
        name: "info", usage: "berth info [OPTIONS]", summary: "Display system-wide information",
        options: [Option("format", "f", .value)], maxArgs: 0
    ) { cli, args in
        let server = try cli.client().get("/info")
        if let format = args.format {
            var all = server.object ?? JSONObject()
            all["ClientInfo"] = clientInfo
            cli.out(try render(format, .object(all)) + "\n")
            return 0
        }
        func s(_ key: String) -> String {
            guard let v = server[key] else { return "" }
            return Template.display(.json(v))
        }
        var text = "Client:\n Version:    \(BerthVersion.version)\n Context:    default\n Debug Mode: false\n\nServer:\n"
        text += " Containers: \(s("Containers"))\n  Running: \(s("ContainersRunning"))\n  Paused: \(s("ContainersPaused"))\n"
        text += "  Stopped: \(s("ContainersStopped"))\n Images: \(s("Images"))\n Server Version: \(s("ServerVersion"))\n"
        text += " Storage Driver: \(s("Driver"))\n Logging Driver: \(s("LoggingDriver"))\n Cgroup Driver: \(s("CgroupDriver"))\n"
        text += " Cgroup Version: \(s("CgroupVersion"))\n"
        if let runtimes = server["Runtimes"]?.object { text += " Runtimes: \(runtimes.keys.sorted().joined(separator: " "))\n" }
        text += " Default Runtime: \(s("DefaultRuntime"))\n Init Binary: \(s("InitBinary"))\n"
        text += " Security Options:\n" + (server["SecurityOptions"]?.array ?? []).compactMap(\.string).map {
            "  " + ($0.hasPrefix("name=") ? String($0.dropFirst(5)).replacing(",", with: "\n   ") : $0) + "\n"
        }.joined()
        text += " Kernel Version: \(s("KernelVersion"))\n Operating System: \(s("OperatingSystem"))\n OSType: \(s("OSType"))\n"
        text += " Architecture: \(s("Architecture"))\n CPUs: \(s("NCPU"))\n"
        text += " Total Memory: \(Units.bytesSize(server["MemTotal"]?.double ?? 0))\n Name: \(s("Name"))\n ID: \(s("ID"))\n"
        text += " Docker Root Dir: \(s("DockerRootDir"))\n Debug Mode: \(s("Debug"))\n Experimental: \(s("ExperimentalBuild"))\n"
        text += " Live Restore Enabled: \(s("LiveRestoreEnabled"))\n"
        cli.out(text + "\n")
        for w in server["Warnings"]?.array ?? [] { if let w = w.string { cli.err(w + "\n") } }
        return 0
    }

    static let events = Command(
        name: "events", usage: "berth events [OPTIONS]", summary: "Get real time events from the server",
        options: [Option("since", nil, .value), Option("until", nil, .value), Option("filter", "f", .list),
                  Option("format", nil, .value)], maxArgs: 0
    ) { cli, args in
        let now = Units.now()
        func time(_ name: String) throws -> String? {
            guard let v = args.value(name) else { return nil }
            guard let t = Units.timestamp(v, now: now) else { throw CLIError("invalid value for \"\(name)\": \(v)") }
            return t
        }
        let response = try cli.client().call("GET", "/events", query: [
            ("since", try time("since")), ("until", try time("until")), ("filters", try filtersJSON(args.list("filter"))),
        ])
        var format = args.format
        if format == "json" { format = "{{json .}}" }
        let template = try format.map { f throws -> Template in
            do { return try Template(f) } catch { throw CLIError("template parsing error: \(error)") }
        }
        while let event = try response.nextJSONLine() {
            if let template {
                do { cli.out(try template.render(event) + "\n") } catch { throw CLIError("\(error)") }
            } else {
                cli.out(line(event))
            }
        }
        return 0
    }

    /// docker's event line: time, type, action, actor ID and its sorted attributes.
    static func line(_ event: JSON) -> String {
        var text = ""
        if let nanos = event["timeNano"]?.int {
            let n = Int64(nanos)
            text += Timestamp.format(seconds: Int(n / 1_000_000_000), nanoseconds: Int(n % 1_000_000_000)) + " "
        } else if let seconds = event["time"]?.int {
            text += Timestamp.format(seconds: seconds, nanoseconds: 0) + " "
        }
        text += "\(event["Type"]?.string ?? "") \(event["Action"]?.string ?? "") \(event["Actor"]?["ID"]?.string ?? "")"
        let attributes = event["Actor"]?["Attributes"]?.object?.pairs ?? []
        if !attributes.isEmpty {
            text += " (" + attributes.sorted { $0.0 < $1.0 }.map { "\($0.0)=\($0.1.string ?? "")" }.joined(separator: ", ") + ")"
        }
        return text + "\n"
    }

    static let df = Command(
        name: "system df", usage: "berth system df [OPTIONS]", summary: "Show docker disk usage",
        options: [Option("format", nil, .value), Option("verbose", "v")], maxArgs: 0
    ) { cli, args in
        let usage = try cli.client().get("/system/df")
        func size(_ n: Double) -> String { Units.humanSize(n, precision: 4) }
        func reclaimable(_ r: Double, of total: Double) -> String {
            total > 0 ? "\(size(r)) (\(Int64(r * 100 / total))%)" : size(r)
        }
        let images = usage["Images"]?.array ?? []
        let imagesTotal = usage["LayersSize"]?.double ?? 0
        var imagesUsed = 0.0
        for i in images where (i["Containers"]?.int ?? 0) != 0 {
            let s = i["Size"]?.double ?? -1, shared = i["SharedSize"]?.double ?? -1
            if s >= 0 && shared >= 0 { imagesUsed += s - shared }
        }
        let containers = usage["Containers"]?.array ?? []
        let active = { (c: JSON) in ["running", "paused", "restarting"].contains(c["State"]?.string ?? "") }
        let containersSize = containers.reduce(0.0) { $0 + ($1["SizeRw"]?.double ?? 0) }
        let containersReclaimable = containers.filter { !active($0) }.reduce(0.0) { $0 + ($1["SizeRw"]?.double ?? 0) }
        let volumes = usage["Volumes"]?.array ?? []
        let volumeSize = { (v: JSON) in max(0, v["UsageData"]?["Size"]?.double ?? 0) }
        let volumesSize = volumes.reduce(0.0) { $0 + volumeSize($1) }
        let volumesReclaimable = volumes.filter { ($0["UsageData"]?["RefCount"]?.int ?? 0) == 0 }.reduce(0.0) { $0 + volumeSize($1) }
        let cache = usage["BuildCache"]?.array ?? []
        let cacheSize = cache.filter { $0["Shared"]?.bool != true }.reduce(0.0) { $0 + ($1["Size"]?.double ?? 0) }
        let cacheReclaimable = cache.filter { $0["InUse"]?.bool != true }.reduce(0.0) { $0 + ($1["Size"]?.double ?? 0) }
        func row(_ type: String, _ total: Int, _ active: Int, _ s: Double, _ r: String) -> JSON {
            .object([("Active", .string(String(active))), ("Reclaimable", .string(r)), ("Size", .string(size(s))),
                     ("TotalCount", .string(String(total))), ("Type", .string(type))])
        }
        let rows = [
            row("Images", images.count, images.filter { ($0["Containers"]?.int ?? 0) > 0 }.count, imagesTotal,
                reclaimable(imagesTotal - imagesUsed, of: imagesTotal)),
            row("Containers", containers.count, containers.filter(active).count, containersSize,
                reclaimable(containersReclaimable, of: containersSize)),
            row("Local Volumes", volumes.count, volumes.filter { ($0["UsageData"]?["RefCount"]?.int ?? 0) > 0 }.count,
                volumesSize, reclaimable(volumesReclaimable, of: volumesSize)),
            row("Build Cache", cache.count, cache.filter { $0["InUse"]?.bool == true }.count, cacheSize, size(cacheReclaimable)),
        ]
        try printListing(rows: rows, format: args.format,
                         defaultTable: "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
                         headers: ["Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
                                   "Reclaimable": "RECLAIMABLE"])
        return 0
    }

    static let prune = Command(
        name: "system prune", usage: "berth system prune [OPTIONS]", summary: "Remove unused data",
        options: [Option("all", "a"), Option("force", "f"), Option("volumes"), Option("filter", nil, .list)], maxArgs: 0
    ) { cli, args in
        let all = args.flag("all"), volumes = args.flag("volumes")
        var warning = "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n"
        if volumes { warning += "  - all anonymous volumes not used by at least one container\n" }
        warning += all ? "  - all images without at least one container associated to them\n" : "  - all dangling images\n"
        warning += "  - unused build cache\n"
        guard try confirm(cli, args, warning) else { return 0 }
        let client = try cli.client()
        let filters = args.list("filter")
        var reclaimed = 0.0
        let containers = try client.json("POST", "/containers/prune", query: [("filters", try filtersJSON(filters))])
        reclaimed += containers["SpaceReclaimed"]?.double ?? 0
        let deletedContainers = (containers["ContainersDeleted"]?.array ?? []).compactMap(\.string)
        if !deletedContainers.isEmpty { cli.out("Deleted Containers:\n" + deletedContainers.map { $0 + "\n" }.joined() + "\n") }
        // A daemon without networks or a build cache has nothing of them to prune.
        if let networks = try? client.json("POST", "/networks/prune", query: [("filters", try filtersJSON(filters))]) {
            let deleted = (networks["NetworksDeleted"]?.array ?? []).compactMap(\.string)
            if !deleted.isEmpty { cli.out("Deleted Networks:\n" + deleted.map { $0 + "\n" }.joined() + "\n") }
        }
        if volumes {
            let answer = try VolumeCommands.pruneVolumes(cli, all: false, filters: filters)
            reclaimed += answer["SpaceReclaimed"]?.double ?? 0
            let deleted = (answer["VolumesDeleted"]?.array ?? []).compactMap(\.string)
            if !deleted.isEmpty { cli.out("Deleted Volumes:\n" + deleted.map { $0 + "\n" }.joined() + "\n") }
        }
        let images = try ImageCommands.pruneImages(cli, all: all, filters: filters)
        reclaimed += images["SpaceReclaimed"]?.double ?? 0
        let deletedImages = ImageCommands.deletedImageLines(images)
        if !deletedImages.isEmpty { cli.out("Deleted Images:\n" + deletedImages.map { $0 + "\n" }.joined() + "\n") }
        if let cache = try? client.json("POST", "/build/prune", query: [("all", all ? "1" : nil)]) {
            reclaimed += cache["SpaceReclaimed"]?.double ?? 0
            let deleted = (cache["CachesDeleted"]?.array ?? []).compactMap(\.string)
            if !deleted.isEmpty { cli.out("Deleted build cache objects:\n" + deleted.map { $0 + "\n" }.joined() + "\n") }
        }
        cli.out("Total reclaimed space: \(Units.humanSize(reclaimed))\n")
        return 0
    }
}
