import BerthClient

/// volume create/ls/inspect/rm/prune.
enum VolumeCommands {
    static let all: [Command] = [create, ls, inspect, rm, prune]

    static let create = Command(
        name: "volume create", usage: "berth volume create [OPTIONS] [VOLUME]", summary: "Create a volume",
        options: [Option("driver", "d", .value), Option("opt", "o", .list), Option("label", nil, .list),
                  Option("name", nil, .value)], maxArgs: 1
    ) { cli, args in
        var opts = JSONObject(), labels = JSONObject()
        for o in args.list("opt") {
            let (k, v) = ContainerConfig.split(o)
            opts[k] = .string(v ?? "")
        }
        for l in args.list("label") {
            let (k, v) = ContainerConfig.split(l)
            labels[k] = .string(v ?? "")
        }
        let name = args.positionals.first ?? args.value("name") ?? ""
        let answer = try cli.client().json("POST", "/volumes/create", json: .object([
            ("Name", .string(name)), ("Driver", .string(args.value("driver") ?? "local")),
            ("DriverOpts", .object(opts)), ("Labels", .object(labels)),
        ]))
        cli.out((answer["Name"]?.string ?? name) + "\n")
        return 0
    }

    static let ls = Command(
        name: "volume ls", usage: "berth volume ls [OPTIONS]", summary: "List volumes",
        options: [Option("quiet", "q"), Option("filter", "f", .list), Option("format", nil, .value)], maxArgs: 0
    ) { cli, args in
        let answer = try cli.client().get("/volumes", query: [("filters", try filtersJSON(args.list("filter")))])
        let volumes = (answer["Volumes"]?.array ?? []).sorted { ($0["Name"]?.string ?? "") < ($1["Name"]?.string ?? "") }
        let rows = volumes.map { v -> JSON in
            let labels = (v["Labels"]?.object?.pairs ?? []).map { "\($0.0)=\($0.1.string ?? "")" }.sorted()
            let size = v["UsageData"]?["Size"]?.double
            let fields: [(String, String)] = [
                ("Availability", "N/A"), ("Driver", v["Driver"]?.string ?? ""), ("Group", "N/A"),
                ("Labels", labels.joined(separator: ",")), ("Links", "N/A"), ("Mountpoint", v["Mountpoint"]?.string ?? ""),
                ("Name", v["Name"]?.string ?? ""), ("Scope", v["Scope"]?.string ?? "local"),
                ("Size", size.map { $0 < 0 ? "N/A" : Units.humanSize($0) } ?? "N/A"), ("Status", "N/A"),
            ]
            return .object(fields.map { ($0.0, JSON.string($0.1)) })
        }
        try printListing(rows: rows, format: args.flag("quiet") ? "{{.Name}}" : args.format,
                         defaultTable: "table {{.Driver}}\t{{.Name}}",
                         headers: ["Driver": "DRIVER", "Name": "VOLUME NAME", "Mountpoint": "MOUNTPOINT", "Labels": "LABELS",
                                   "Scope": "SCOPE", "Size": "SIZE", "Links": "LINKS"])
        return 0
    }

    static let inspect = Command(
        name: "volume inspect", usage: "berth volume inspect [OPTIONS] VOLUME [VOLUME...]",
        summary: "Display detailed information on one or more volumes",
        options: [Option("format", "f", .value)], minArgs: 1
    ) { cli, args in
        try ContainerCommands.inspectObjects(cli, args, kinds: ["volume"])
    }

    static let rm = Command(
        name: "volume rm", usage: "berth volume rm [OPTIONS] VOLUME [VOLUME...]", summary: "Remove one or more volumes",
        options: [Option("force", "f")], minArgs: 1
    ) { cli, args in
        let client = try cli.client()
        return forEachTarget(args.positionals) { name in
            _ = try client.call("DELETE", "/volumes/\(percentEncode(name))", query: [("force", args.flag("force") ? "1" : nil)]).body()
            cli.out(name + "\n")
        }
    }

    static let prune = Command(
        name: "volume prune", usage: "berth volume prune [OPTIONS]", summary: "Remove unused local volumes",
        options: [Option("all", "a"), Option("force", "f"), Option("filter", nil, .list)], maxArgs: 0
    ) { cli, args in
        let warning = args.flag("all") ? "WARNING! This will remove all local volumes not used by at least one container."
            : "WARNING! This will remove anonymous local volumes not used by at least one container."
        guard try confirm(cli, args, warning) else { return 0 }
        let answer = try pruneVolumes(cli, all: args.flag("all"), filters: args.list("filter"))
        printPruned(cli, "Deleted Volumes:", answer["VolumesDeleted"], reclaimed: answer["SpaceReclaimed"])
        return 0
    }

    static func pruneVolumes(_ cli: CLI, all: Bool, filters: [String]) throws -> JSON {
        try cli.client().json("POST", "/volumes/prune", query: [("filters", try filtersJSON(filters + (all ? ["all=true"] : [])))])
    }
}
