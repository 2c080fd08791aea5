import BerthClient
import BerthOS
import Glibc

/// An image reference split as the API's query parameters want it: `repo[:tag][@digest]`.
struct ImageReference: Equatable {
    var repository: String
    var tag: String?
    var digest: String?

    init(_ text: String) {
        var rest = Substring(text)
        if let at = rest.firstIndex(of: "@") {
            digest = String(rest[rest.index(after: at)...])
            rest = rest[..<at]
        }
        // A colon after the last slash starts the tag; one before it belongs to a registry port.
        if let colon = rest.lastIndex(of: ":"), !rest[colon...].contains("/") {
            tag = String(rest[rest.index(after: colon)...])
            rest = rest[..<colon]
        }
        repository = String(rest)
    }

    /// The tag docker assumes: `latest` unless a tag or digest is given.
    var tagOrLatest: String? { digest == nil ? (tag ?? "latest") : tag }

    /// How docker names it in messages: `busybox:latest`, `repo@sha256:...`.
    var familiar: String {
        var s = repository
        if let t = tagOrLatest { s += ":" + t }
        if let d = digest { s += "@" + d }
        return s
    }
}

/// Image commands: images, pull, push, rmi, tag, load, save, import, history, prune, inspect.
enum ImageCommands {
    static let all: [Command] = [images, pullCommand, push, rmi, tag, load, save, importImage, history, prune, inspect]

    static let imageHeaders = [
        "Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Digest": "DIGEST", "CreatedSince": "CREATED",
        "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS", "SharedSize": "SHARED SIZE",
        "UniqueSize": "UNIQUE SIZE", "VirtualSize": "SIZE",
    ]

    static let images = Command(
        name: "images", usage: "berth images [OPTIONS] [REPOSITORY[:TAG]]", summary: "List images",
        options: [Option("all", "a"), Option("quiet", "q"), Option("filter", "f", .list), Option("format", nil, .value),
                  Option("no-trunc"), Option("digests")], maxArgs: 1
    ) { cli, args in
        var filters = args.list("filter")
        if let reference = args.positionals.first { filters.append("reference=\(reference)") }
        let list = try cli.client().get("/images/json", query: [
            ("all", args.flag("all") ? "1" : nil), ("filters", try filtersJSON(filters)),
        ]).array ?? []
        let trunc = !args.flag("no-trunc")
        if args.flag("quiet") {
            var seen = Set<String>()
            for image in list {
                let id = image["Id"]?.string ?? ""
                let shown = trunc ? shortID(id) : id
                if seen.insert(shown).inserted { cli.out(shown + "\n") }
            }
            return 0
        }
        let now = Units.now()
        var rows: [JSON] = []
        for image in list {
            let tags = image["RepoTags"]?.array?.compactMap(\.string).filter { $0 != "<none>:<none>" } ?? []
            let digests = image["RepoDigests"]?.array?.compactMap(\.string) ?? []
            let pairs: [(String, String)] = tags.isEmpty
                ? [(digests.first.map { ImageReference($0).repository } ?? "<none>", "<none>")]
                : tags.map { t in let r = ImageReference(t); return (r.repository, r.tag ?? "<none>") }
            for (repository, tag) in pairs {
                rows.append(row(image, repository: repository, tag: tag, digests: digests, trunc: trunc, now: now))
            }
        }
        let table = args.flag("digests")
            ? "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
            : "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
        try printListing(rows: rows, format: args.format, defaultTable: table, headers: imageHeaders)
        return 0
    }

    static func row(_ image: JSON, repository: String, tag: String, digests: [String], trunc: Bool, now: Double) -> JSON {
        let id = image["Id"]?.string ?? ""
        let created = Int64(image["Created"]?.int ?? 0)
        let size = Units.humanSize(image["Size"]?.double ?? 0)
        let digest = digests.first(where: { ImageReference($0).repository == repository }).flatMap { ImageReference($0).digest } ?? "<none>"
        let containers = image["Containers"]?.int ?? -1
        let shared = image["SharedSize"]?.double ?? -1
        let fields: [(String, String)] = [
            ("Containers", containers < 0 ? "N/A" : String(containers)), ("CreatedAt", Units.goTime(unix: created)),
            ("CreatedSince", Units.humanDuration(seconds: now - Double(created)) + " ago"), ("Digest", digest),
            ("ID", trunc ? shortID(id) : id), ("Repository", repository),
            ("SharedSize", shared < 0 ? "N/A" : Units.humanSize(shared)), ("Size", size), ("Tag", tag),
            ("UniqueSize", shared < 0 ? "N/A" : Units.humanSize((image["Size"]?.double ?? 0) - shared)),
            ("VirtualSize", Units.humanSize(image["Size"]?.double ?? 0, precision: 4)),
        ]
        return .object(fields.map { ($0.0, JSON.string($0.1)) })
    }

    // MARK: pull and push

    static let pullCommand = Command(
        name: "pull", usage: "berth pull [OPTIONS] NAME[:TAG|@DIGEST]", summary: "Download an image from a registry",
        options: [Option("all-tags", "a"), Option("quiet", "q"), Option("platform", nil, .value)], minArgs: 1, maxArgs: 1
    ) { cli, args in
        var reference = ImageReference(args.positionals[0])
        if args.flag("all-tags") { reference.tag = nil }
        try pull(cli, reference, quiet: args.flag("quiet"), platform: args.value("platform"), toStderr: false,
                 allTags: args.flag("all-tags"))
        return 0
    }

    /// POST /images/create?fromImage=...: progress lines (to stderr inside `run`), then the
    /// reference pulled.
    static func pull(_ cli: CLI, _ reference: ImageReference, quiet: Bool, platform: String?, toStderr: Bool,
                     allTags: Bool = false) throws {
        let response = try cli.client().call("POST", "/images/create", query: [
            ("fromImage", reference.repository), ("tag", allTags ? nil : (reference.digest ?? reference.tagOrLatest)),
            ("platform", platform),
        ], headers: [CredentialStore(environment: cli.environment).header(forRepository: reference.repository)])
        try printProgress(response, to: quiet ? -1 : (toStderr ? 2 : 1))
        if !quiet && !toStderr { cli.out(allTags ? reference.repository + "\n" : reference.familiar + "\n") }
    }

    /// Prints a JSON progress stream as docker does without a terminal (one line per status),
    /// and throws the stream's error message. `fd` -1 prints nothing.
    static func printProgress(_ response: Response, to fd: Int32) throws {
        while let message = try response.nextJSONLine() {
            if let error = message["errorDetail"]?["message"]?.string ?? message["error"]?.string {
                throw ClientError(.daemon, error)
            }
            guard fd >= 0 else { continue }
            if let stream = message["stream"]?.string {
                writeAll(fd, stream)
            } else if let status = message["status"]?.string {
                // Byte counts change many times a second; docker prints them only on a terminal.
                if message["progressDetail"]?["current"] != nil { continue }
                let id = message["id"]?.string.map { $0 + ": " } ?? ""
                writeAll(fd, id + status + "\n")
            }
        }
    }

    static let push = Command(
        name: "push", usage: "berth push [OPTIONS] NAME[:TAG]", summary: "Upload an image to a registry",
        options: [Option("all-tags", "a"), Option("quiet", "q"), Option("platform", nil, .value)], minArgs: 1, maxArgs: 1
    ) { cli, args in
        let reference = ImageReference(args.positionals[0])
        let response = try cli.client().call("POST", "/images/\(reference.repository)/push", query: [
            ("tag", args.flag("all-tags") ? nil : reference.tagOrLatest), ("platform", args.value("platform")),
        ], headers: [CredentialStore(environment: cli.environment).header(forRepository: reference.repository)])
        try printProgress(response, to: args.flag("quiet") ? -1 : 1)
        if args.flag("quiet") { cli.out(reference.familiar + "\n") }
        return 0
    }

    static let rmi = Command(
        name: "rmi", usage: "berth rmi [OPTIONS] IMAGE [IMAGE...]", summary: "Remove one or more images",
        options: [Option("force", "f"), Option("no-prune")], minArgs: 1
    ) { cli, args in
        let client = try cli.client()
        return forEachTarget(args.positionals) { target in
            let answer = try client.json("DELETE", "/images/\(target)", query: [
                ("force", args.flag("force") ? "1" : nil), ("noprune", args.flag("no-prune") ? "1" : nil),
            ])
            for item in answer.array ?? [] {
                if let u = item["Untagged"]?.string { cli.out("Untagged: \(u)\n") }
                if let d = item["Deleted"]?.string { cli.out("Deleted: \(d)\n") }
            }
        }
    }

    static let tag = Command(
        name: "tag", usage: "berth tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
        summary: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", minArgs: 2, maxArgs: 2
    ) { cli, args in
        let target = ImageReference(args.positionals[1])
        guard target.digest == nil else { throw CLIError("refusing to create a tag with a digest reference") }
        try cli.client().json("POST", "/images/\(args.positionals[0])/tag", query: [
            ("repo", target.repository), ("tag", target.tagOrLatest),
        ])
        return 0
    }

    static let load = Command(
        name: "load", usage: "berth load [OPTIONS]", summary: "Load an image from a tar archive or STDIN",
        options: [Option("input", "i", .value), Option("quiet", "q"), Option("platform", nil, .list)], maxArgs: 0
    ) { cli, args in
        var fd: Int32 = 0
        if let path = args.value("input") {
            fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw CLIError("open \(path): \(String(cString: strerror(errno)))") }
        } else if Terminal.isTerminal(0) {
            throw CLIError("requested load from stdin, but stdin is empty")
        }
        defer { if fd > 0 { close(fd) } }
        let response = try cli.client().call("POST", "/images/load", query: [("quiet", args.flag("quiet") ? "1" : "0")],
                                             contentType: "application/x-tar", bodyFile: fd)
        try printProgress(response, to: 1)
        return 0
    }

    static let save = Command(
        name: "save", usage: "berth save [OPTIONS] IMAGE [IMAGE...]",
        summary: "Save one or more images to a tar archive (streamed to STDOUT by default)",
        options: [Option("output", "o", .value), Option("platform", nil, .list)], minArgs: 1
    ) { cli, args in
        let output = args.value("output")
        if output == nil && Terminal.isTerminal(1) {
            throw CLIError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
        }
        let response = try cli.client().call("GET", "/images/get", query: args.positionals.map { ("names", $0) })
        var fd: Int32 = 1
        var temporary: String?
        if let output {
            // Written beside the target and renamed, so a failed save leaves no partial archive.
            temporary = output + ".berth-tmp"
            fd = open(temporary!, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw CLIError("failed to save image: \(String(cString: strerror(errno)))") }
        }
        do {
            while let bytes = try response.next() { writeAll(fd, bytes) }
        } catch {
            if let temporary { close(fd); unlink(temporary) }
            throw error
        }
        if let temporary, let output {
            close(fd)
            guard rename(temporary, output) == 0 else { throw CLIError("failed to save image: \(String(cString: strerror(errno)))") }
        }
        return 0
    }

    static let importImage = Command(
        name: "import", usage: "berth import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
        summary: "Import the contents from a tarball to create a filesystem image",
        options: [Option("change", "c", .list), Option("message", "m", .value), Option("platform", nil, .value)],
        minArgs: 1, maxArgs: 2
    ) { cli, args in
        let source = args.positionals[0]
        let reference = args.positionals.count > 1 ? ImageReference(args.positionals[1]) : nil
        var query: EngineClient.Query = [("repo", reference?.repository), ("tag", reference?.tag),
                                         ("message", args.value("message")), ("platform", args.value("platform"))]
        query += args.list("change").map { ("changes", $0) }
        let response: Response
        if source.contains("://") {
            response = try cli.client().call("POST", "/images/create", query: [("fromSrc", source)] + query)
        } else {
            let fd = source == "-" ? 0 : open(source, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw CLIError("open \(source): \(String(cString: strerror(errno)))") }
            defer { if fd > 0 { close(fd) } }
            response = try cli.client().call("POST", "/images/create", query: [("fromSrc", "-")] + query,
                                             contentType: "application/x-tar", bodyFile: fd)
        }
        try printProgress(response, to: 1)
        return 0
    }

    static let history = Command(
        name: "history", usage: "berth history [OPTIONS] IMAGE", summary: "Show the history of an image",
        options: [Option("human", "H", .flag), Option("no-trunc"), Option("quiet", "q"), Option("format", nil, .value)],
        minArgs: 1, maxArgs: 1
    ) { cli, args in
        let list = try cli.client().get("/images/\(args.positionals[0])/history").array ?? []
        let trunc = !args.flag("no-trunc"), human = args.value("human") != "false"
        if args.flag("quiet") {
            for h in list { cli.out((trunc ? shortID(h["Id"]?.string ?? "") : h["Id"]?.string ?? "") + "\n") }
            return 0
        }
        let now = Units.now()
        let rows = list.map { h -> JSON in
            let id = h["Id"]?.string ?? "<missing>"
            let created = Int64(h["Created"]?.int ?? 0)
            var createdBy = (h["CreatedBy"]?.string ?? "").replacing("\t", with: " ")
            if trunc { createdBy = ellipsis(createdBy, 45) }
            let size = h["Size"]?.double ?? 0
            let fields: [(String, String)] = [
                ("Comment", h["Comment"]?.string ?? ""),
                ("CreatedAt", human ? Units.goTime(unix: created) : Timestamp.format(seconds: Int(created), nanoseconds: 0)),
                ("CreatedBy", createdBy),
                // A layer without a creation time (created 0) is "N/A", as docker shows it.
                ("CreatedSince", created <= 0 ? "N/A"
                    : human ? Units.humanDuration(seconds: now - Double(created)) + " ago" : Units.goTime(unix: created)),
                ("ID", id == "<missing>" ? id : (trunc ? shortID(id) : id)),
                ("Size", human ? Units.humanSize(size) : String(Int64(size))),
            ]
            return .object(fields.map { ($0.0, JSON.string($0.1)) })
        }
        try printListing(rows: rows, format: args.format,
                         defaultTable: "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
                         headers: ["ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                                   "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"])
        return 0
    }

    static let prune = Command(
        name: "image prune", usage: "berth image prune [OPTIONS]", summary: "Remove unused images",
        options: [Option("all", "a"), Option("force", "f"), Option("filter", nil, .list)], maxArgs: 0
    ) { cli, args in
        let warning = args.flag("all") ? "WARNING! This will remove all images without at least one container associated to them."
            : "WARNING! This will remove all dangling images."
        guard try confirm(cli, args, warning) else { return 0 }
        let answer = try pruneImages(cli, all: args.flag("all"), filters: args.list("filter"))
        printPruned(cli, "Deleted Images:", nil, reclaimed: answer["SpaceReclaimed"], lines: deletedImageLines(answer))
        return 0
    }

    static func pruneImages(_ cli: CLI, all: Bool, filters: [String]) throws -> JSON {
        try cli.client().json("POST", "/images/prune", query: [("filters", try filtersJSON(filters + ["dangling=\(!all)"]))])
    }

    static func deletedImageLines(_ answer: JSON) -> [String] {
        (answer["ImagesDeleted"]?.array ?? []).compactMap { item in
            item["Untagged"]?.string.map { "untagged: \($0)" } ?? item["Deleted"]?.string.map { "deleted: \($0)" }
        }
    }

    static let inspect = Command(
        name: "image inspect", usage: "berth image inspect [OPTIONS] IMAGE [IMAGE...]",
        summary: "Display detailed information on one or more images",
        options: [Option("format", "f", .value), Option("platform", nil, .value)], minArgs: 1
    ) { cli, args in
        try ContainerCommands.inspectObjects(cli, args, kinds: ["image"])
    }
}
