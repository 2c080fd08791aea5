import BerthImages
import BerthOCI
import BerthOS
import FoundationEssentials
import Glibc

/// The engine: images and containers under one data root, with persistent state.
///
///     <root>/images/                    the image store (BerthImages)
///     <root>/runtime/                   berth-runtime's --root
///     <root>/containers/<id>/container.json, hosts, hostname, resolv.conf
///     <root>/containers/<id>/bundle/    config.json and rootfs (the overlay, mounted while running)
///     <root>/containers/<id>/monitor/   berth-monitor's directory: container.log, attach.sock, exit.json
///
/// Knows nothing of HTTP. Each container runs under its own berth-monitor; the engine learns of
/// an exit from the monitor's exit.json.
public actor Engine {
    public nonisolated let root: String
    public nonisolated let runtimePath: String
    public nonisolated let monitorPath: String
    let images: ImageStore
    var containers: [String: ContainerRecord]
    /// Exits observed per container, so `wait(next-exit)` registered before start works.
    var exitCounts: [String: Int] = [:]
    /// Last exit code of removed containers, for `wait(removed)`.
    var removedExitCodes: [String: Int32] = [:]
    var removing: Set<String> = []
    /// Containers whose `start` is waiting on a helper process: the actor runs other calls
    /// meanwhile, and a removal then must not pull the rootfs from under the start.
    var starting: Set<String> = []
    /// Attach clients waiting for a created container's monitor.
    var pendingAttaches: [String: [AsyncStream<AttachConnection>.Continuation]] = [:]

    public init(root: String, runtimePath: String, monitorPath: String) throws(EngineError) {
        let root = FileSystem.absolute(root)
        self.root = root
        self.runtimePath = runtimePath
        self.monitorPath = monitorPath
        do {
            images = try ImageStore(root: root + "/images")
        } catch {
            throw Self.mapError(error)
        }
        try Self.system { () throws(SystemError) in
            try FileSystem.makeDirectories(root + "/containers", mode: 0o710)
            try FileSystem.makeDirectories(root + "/runtime", mode: 0o700)
            try FileSystem.makeDirectories(root + "/tmp", mode: 0o700)
        }
        let decoder = JSONDecoder()
        var loaded: [String: ContainerRecord] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: root + "/containers")) ?? [] {
            guard let bytes = try? FileSystem.readBytes(root + "/containers/\(entry)/container.json"),
                  let rec = try? decoder.decode(ContainerRecord.self, from: Data(bytes)) else { continue }
            loaded[rec.id] = rec
        }
        containers = loaded
    }

    /// Resumes watching containers that were running when the daemon last stopped.
    public func recover() {
        for rec in containers.values where rec.running { watchExit(rec.id) }
    }

    // MARK: Paths

    func dir(_ id: String) -> String { root + "/containers/" + id }
    func monitorDir(_ id: String) -> String { dir(id) + "/monitor" }
    func rootfs(_ id: String) -> String { dir(id) + "/bundle/rootfs" }

    // MARK: Images

    /// Loads a docker-archive or OCI layout tar; returns `busybox:latest` for tagged images and
    /// `sha256:…` for untagged ones, one per image.
    public func loadImages(path: String) throws(EngineError) -> [(tagged: Bool, name: String)] {
        do {
            return try images.load(path: path).flatMap { img -> [(tagged: Bool, name: String)] in
                img.tags.isEmpty ? [(false, img.id.string)] : img.tags.map { (true, $0) }
            }
        } catch {
            throw Self.mapError(error)
        }
    }

    public func imageSummaries() throws(EngineError) -> [ImageSummary] {
        do {
            return try images.list().map {
                ImageSummary(id: $0.id.string, repoTags: $0.repoTags, repoDigests: $0.repoDigests, created: $0.created,
                             size: $0.size, labels: $0.labels)
            }
        } catch {
            throw Self.mapError(error)
        }
    }

    public func imageDetails(_ ref: String) throws(EngineError) -> ImageDetails {
        do {
            let img = try images.image(ref)
            return ImageDetails(id: img.id.string, repoTags: img.repoTags.map(\.familiarString),
                                repoDigests: img.repoDigests.map(\.familiarString), created: img.config.created ?? "",
                                author: img.config.author ?? "", architecture: img.config.architecture,
                                os: img.config.os, size: img.size, config: img.config.config,
                                layers: img.diffIDs.map(\.string))
        } catch {
            throw Self.mapError(error, imageRef: ref)
        }
    }

    // MARK: Looking up

    /// Docker's order: full ID, then name, then a unique ID prefix.
    func resolve(_ ref: String) throws(EngineError) -> String {
        if containers[ref] != nil { return ref }
        let name = ref.hasPrefix("/") ? ref : "/" + ref
        if let rec = containers.values.first(where: { $0.name == name }) { return rec.id }
        let matches = ref.isEmpty ? [] : containers.keys.filter { $0.hasPrefix(ref) }
        if matches.count == 1 { return matches[0] }
        if matches.count > 1 { throw EngineError(.invalidArgument, "multiple IDs found with provided prefix: \(ref)") }
        throw EngineError(.notFound, "No such container: \(ref)")
    }

    public func container(_ ref: String) throws(EngineError) -> ContainerRecord {
        containers[try resolve(ref)]!
    }

    /// Newest first, as `docker ps`.
    public func list(all: Bool) -> [ContainerRecord] {
        containers.values.filter { all || $0.running }.sorted { $0.created > $1.created }
    }

    public func counts() -> (running: Int, stopped: Int, images: Int) {
        let running = containers.values.filter(\.running).count
        return (running, containers.count - running, (try? images.list().count) ?? 0)
    }

    // MARK: Create

    public func create(name requested: String?, request: DockerContainerCreateRequest) throws(EngineError) -> (id: String, warnings: [String]) {
        var name: String
        if let requested, !requested.isEmpty {
            let bare = requested.hasPrefix("/") ? String(requested.dropFirst()) : requested
            guard Self.validName(bare) else {
                throw EngineError(.invalidArgument, "Invalid container name (\(bare)), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
            }
            name = "/" + bare
            if let other = containers.values.first(where: { $0.name == name }) {
                throw EngineError(.conflict, "Conflict. The container name \"\(name)\" is already in use by container \"\(other.id)\". You have to remove (or rename) that container to be able to reuse that name.")
            }
        } else {
            repeat { name = "/" + Self.randomName() } while containers.values.contains { $0.name == name }
        }
        guard let imageRef = request.config.image, !imageRef.isEmpty else {
            throw EngineError(.invalidArgument, "no image specified: config.Image is required")
        }
        let image: ImageStore.Image
        do { image = try images.image(imageRef) } catch { throw Self.mapError(error, imageRef: imageRef) }

        var id = Self.randomID()
        while containers[id] != nil { id = Self.randomID() }
        var hostConfig = request.hostConfig ?? DockerHostConfig()
        if hostConfig.logConfig?.type == nil || hostConfig.logConfig?.type == "" {
            hostConfig.logConfig = .init(type: "json-file", config: [:])
        }
        if hostConfig.networkMode == nil || hostConfig.networkMode == "" { hostConfig.networkMode = "default" }
        let dir = dir(id)
        do throws(EngineError) {
            try Self.system { () throws(SystemError) in
                try FileSystem.makeDirectories(dir + "/bundle/rootfs", mode: 0o710)
            }
            let mount: OverlayMount
            do { mount = try images.prepareRootfs(container: id, image: image.id.string, target: rootfs(id)) } catch {
                throw Self.mapError(error)
            }
            let hostname = request.config.hostname.flatMap { $0.isEmpty ? nil : $0 } ?? String(id.prefix(12))
            let hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                + "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
            let resolv = (try? FileSystem.readString("/etc/resolv.conf")) ?? ""
            try Self.system { () throws(SystemError) in
                try FileSystem.writeAtomically(dir + "/hostname", Array((hostname + "\n").utf8))
                try FileSystem.writeAtomically(dir + "/hosts", Array(hosts.utf8))
                try FileSystem.writeAtomically(dir + "/resolv.conf", Array(resolv.utf8))
            }
            // Networking is not there yet: every container gets its own namespace with loopback.
            var specHostConfig = hostConfig
            specHostConfig.networkMode = "none"
            let passwd = Self.readFromLayers(mount.lower, "etc/passwd")
            let group = Self.readFromLayers(mount.lower, "etc/group")
            let lookups = SpecBuilder.Lookups(
                user: { Self.lookupUser($0, passwd: passwd, group: group) },
                group: { Self.lookupGroup($0, group: group) })
            let built = try SpecBuilder.buildWithWarnings(
                config: request.config, hostConfig: specHostConfig, image: image.config, containerID: id,
                rootfs: "rootfs", hostsFile: dir + "/hosts", resolvConf: dir + "/resolv.conf",
                hostnameFile: dir + "/hostname", lookups: lookups)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let specBytes: Data
            do { specBytes = try encoder.encode(built.spec) } catch {
                throw EngineError(.system, "encoding config.json: \(error)")
            }
            try Self.system { () throws(SystemError) in
                try FileSystem.writeAtomically(dir + "/bundle/config.json", specBytes, durable: true)
            }
            let args = built.spec.process?.args ?? []
            let rec = ContainerRecord(
                id: id, name: name, created: Timestamp.now(), image: imageRef, imageID: image.id.string,
                path: args.first ?? "", args: Array(args.dropFirst()), config: request.config, hostConfig: hostConfig)
            try persist(rec)
            containers[id] = rec
            return (id, built.warnings)
        } catch {
            try? images.snapshots.remove(container: id)
            try? FileSystem.removeTree(dir)
            throw error
        }
    }

    // MARK: Start

    public func start(_ ref: String) async throws(EngineError) {
        let id = try resolve(ref)
        guard var rec = containers[id] else { throw EngineError(.notFound, "No such container: \(ref)") }
        if rec.running { throw EngineError(.notModified, "container already started") }
        guard !removing.contains(id) else { throw EngineError(.conflict, "removal of container \(id) is already in progress") }
        guard starting.insert(id).inserted else { throw EngineError(.conflict, "container \(id) is already being started") }
        defer { starting.remove(id) }
        if rec.runtimeCreated {
            _ = await runtime(["delete", "--force", id])
            rec.runtimeCreated = false
        }
        let monitorDir = monitorDir(id)
        unlink(monitorDir + "/exit.json")
        do throws(EngineError) {
            if !rec.rootfsMounted {
                let snapshot: Snapshotter.ContainerSnapshot
                do { snapshot = try images.snapshots.snapshot(container: id) } catch { throw Self.mapError(error) }
                guard Glibc.mount("overlay", rootfs(id), "overlay", 0, snapshot.mount.options) == 0 else {
                    throw EngineError(.system, SystemError("mount overlay on \(rootfs(id))").message)
                }
                rec.rootfsMounted = true
                containers[id] = rec
            }
            var args = ["--runtime", runtimePath, "--runtime-root", root + "/runtime", "--id", id,
                        "--bundle", dir(id) + "/bundle", "--dir", monitorDir]
            if rec.config.tty == true { args.append("--tty") }
            if rec.config.openStdin == true { args.append("--stdin") }
            let launched = await HelperProcess.run(monitorPath, args)
            guard launched.succeeded else {
                throw EngineError(.system, Self.trimmed(launched.output))
            }
            rec = containers[id] ?? rec
            rec.runtimeCreated = true
            containers[id] = rec
            // Attach clients connect before the process runs, so they miss no output.
            for waiter in pendingAttaches.removeValue(forKey: id) ?? [] {
                if let conn = try? AttachConnection(path: monitorDir + "/attach.sock") { waiter.yield(conn) }
                waiter.finish()
            }
            let started = await runtime(["start", id])
            guard started.succeeded else {
                _ = await runtime(["delete", "--force", id])
                rec.runtimeCreated = false
                containers[id] = rec
                throw EngineError(.system, Self.trimmed(started.output))
            }
        } catch {
            rec = containers[id] ?? rec
            unmountRootfs(&rec)
            rec.error = error.message
            containers[id] = rec
            try? persist(rec)
            for waiter in pendingAttaches.removeValue(forKey: id) ?? [] { waiter.finish() }
            throw error
        }
        rec = containers[id] ?? rec
        rec.pid = (try? FileSystem.readString(monitorDir + "/pid")).flatMap { Int32(Self.trimmed($0)) } ?? 0
        try rec.transition(to: .running)
        rec.startedAt = Timestamp.now()
        rec.finishedAt = ContainerRecord.zeroTime
        rec.exitCode = 0
        rec.error = ""
        containers[id] = rec
        try persist(rec)
        watchExit(id)
    }

    /// Polls for the monitor's exit.json (written atomically) every 20 ms.
    func watchExit(_ id: String) {
        let path = monitorDir(id) + "/exit.json"
        Task {
            while !FileSystem.exists(path) {
                try? await Task.sleep(for: .milliseconds(20))
            }
            await self.observeExit(id)
        }
    }

    struct ExitFile: Decodable {
        var exitCode: Int32
        var finishedAt: String?
    }

    func observeExit(_ id: String) async {
        guard var rec = containers[id], rec.running else { return }
        let exit = (try? FileSystem.readBytes(monitorDir(id) + "/exit.json"))
            .flatMap { try? JSONDecoder().decode(ExitFile.self, from: Data($0)) }
        try? rec.transition(to: .exited)
        rec.exitCode = exit?.exitCode ?? 255
        rec.finishedAt = exit?.finishedAt ?? Timestamp.now()
        rec.pid = 0
        let deleteRuntime = rec.runtimeCreated
        rec.runtimeCreated = false
        unmountRootfs(&rec)
        containers[id] = rec
        exitCounts[id, default: 0] += 1
        try? persist(rec)
        if deleteRuntime { _ = await runtime(["delete", "--force", id]) }
        if rec.hostConfig.autoRemove == true, containers[id] != nil {
            try? await remove(id, force: true)
        }
    }

    func unmountRootfs(_ rec: inout ContainerRecord) {
        guard rec.rootfsMounted else { return }
        let target = rootfs(rec.id)
        if umount2(target, 0) != 0 && errno != EINVAL { umount2(target, Int32(MNT_DETACH)) }
        rec.rootfsMounted = false
    }

    // MARK: Wait

    public enum WaitCondition: String, Sendable {
        case notRunning = "not-running", nextExit = "next-exit", removed
    }

    /// Waits for the condition; returns the exit code.
    public func wait(_ ref: String, condition: WaitCondition) async throws(EngineError) -> Int32 {
        let id = try resolve(ref)
        let seen = exitCounts[id, default: 0]
        while true {
            guard let rec = containers[id] else { return removedExitCodes[id] ?? 0 }
            switch condition {
            case .notRunning where !rec.running: return rec.exitCode
            case .nextExit where exitCounts[id, default: 0] > seen: return rec.exitCode
            default: break
            }
            do { try await Task.sleep(for: .milliseconds(20)) } catch {
                throw EngineError(.invalidState, "wait cancelled")
            }
        }
    }

    // MARK: Attach and logs

    /// A connection to the container's output (and stdin). For a created container it arrives
    /// when the container starts; for a stopped one the stream ends empty.
    public func attach(_ ref: String) throws(EngineError) -> (tty: Bool, connection: AsyncStream<AttachConnection>) {
        let id = try resolve(ref)
        let rec = containers[id]!
        let (stream, continuation) = AsyncStream.makeStream(of: AttachConnection.self)
        switch rec.status {
        case .running:
            continuation.yield(try AttachConnection(path: monitorDir(id) + "/attach.sock"))
            continuation.finish()
        case .created:
            pendingAttaches[id, default: []].append(continuation)
        default:
            continuation.finish()
        }
        return (rec.config.tty == true, stream)
    }

    public struct LogRecord: Sendable {
        public var stderr: Bool
        public var bytes: [UInt8]
    }

    /// The container's log; with `follow`, also what it writes until it stops.
    public func logs(_ ref: String, follow: Bool) throws(EngineError) -> (tty: Bool, records: AsyncThrowingStream<LogRecord, any Error>) {
        let id = try resolve(ref)
        let tty = containers[id]!.config.tty == true
        let path = monitorDir(id) + "/container.log"
        let stream = AsyncThrowingStream<LogRecord, any Error> { continuation in
            let task = Task.detached {
                var reader = LogReader(path: path)
                while true {
                    let running = await self.isRunning(id)
                    for rec in reader.readAvailable() { continuation.yield(rec) }
                    if !follow || !running { break }
                    try? await Task.sleep(for: .milliseconds(50))
                    if Task.isCancelled { break }
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
        return (tty, stream)
    }

    func isRunning(_ id: String) -> Bool { containers[id]?.running ?? false }

    // MARK: Signals

    public func kill(_ ref: String, signal: String?) async throws(EngineError) {
        let id = try resolve(ref)
        guard containers[id]!.running else {
            throw EngineError(.conflict, "Container \(id) is not running")
        }
        let result = await runtime(["kill", id, signal.flatMap { $0.isEmpty ? nil : $0 } ?? "SIGKILL"])
        guard result.succeeded else { throw EngineError(.system, Self.trimmed(result.output)) }
    }

    /// The stop signal, then SIGKILL after `timeout` seconds (default the container's, else 10).
    public func stop(_ ref: String, timeout: Int?) async throws(EngineError) {
        let id = try resolve(ref)
        let rec = containers[id]!
        guard rec.running else { throw EngineError(.notModified, "container already stopped") }
        let seconds = timeout ?? rec.config.stopTimeout ?? 10
        _ = await runtime(["kill", id, rec.config.stopSignal ?? "SIGTERM"])
        if seconds >= 0, await waitStopped(id, seconds: Double(seconds)) { return }
        _ = await runtime(["kill", id, "SIGKILL"])
        _ = await waitStopped(id, seconds: 30)
    }

    func waitStopped(_ id: String, seconds: Double) async -> Bool {
        let deadline = monotonicSeconds() + seconds
        while containers[id]?.running == true {
            if monotonicSeconds() >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    // MARK: Remove

    public func remove(_ ref: String, force: Bool) async throws(EngineError) {
        let id = try resolve(ref)
        guard !removing.contains(id) else { return }
        guard !starting.contains(id) else {
            throw EngineError(.conflict, "cannot remove container \(id): it is being started; try again")
        }
        if containers[id]!.running {
            guard force else {
                throw EngineError(.conflict, "cannot remove container \"\(containers[id]!.name)\": container is running: stop the container before removing or force remove")
            }
            removing.insert(id)
            _ = await runtime(["kill", id, "SIGKILL"])
            if !(await waitStopped(id, seconds: 10)) {
                removing.remove(id)
                throw EngineError(.system, "container \(id) did not exit after SIGKILL")
            }
        }
        removing.insert(id)
        defer { removing.remove(id) }
        guard var rec = containers[id] else { return }
        if rec.runtimeCreated {
            rec.runtimeCreated = false
            containers[id] = rec
            _ = await runtime(["delete", "--force", id])
        }
        rec = containers[id] ?? rec
        unmountRootfs(&rec)
        for waiter in pendingAttaches.removeValue(forKey: id) ?? [] { waiter.finish() }
        try? images.snapshots.remove(container: id)
        do { try FileSystem.removeTree(dir(id)) } catch {
            throw EngineError(.system, error.message)
        }
        removedExitCodes[id] = rec.exitCode
        containers[id] = nil
    }

    // MARK: Helpers

    func runtime(_ args: [String]) async -> HelperProcess.Result {
        await HelperProcess.run(runtimePath, ["--root", root + "/runtime"] + args)
    }

    func persist(_ rec: ContainerRecord) throws(EngineError) {
        let bytes: Data
        do { bytes = try JSONEncoder().encode(rec) } catch { throw EngineError(.system, "encoding container.json: \(error)") }
        let path = dir(rec.id) + "/container.json"
        try Self.system { () throws(SystemError) in try FileSystem.writeAtomically(path, bytes, mode: 0o600, durable: true) }
    }

    static func system<T>(_ body: () throws(SystemError) -> T) throws(EngineError) -> T {
        do { return try body() } catch { throw EngineError(.system, error.message) }
    }

    static func mapError(_ error: any Error, imageRef: String? = nil) -> EngineError {
        if let e = error as? EngineError { return e }
        guard let e = error as? ImageError else { return EngineError(.system, "\(error)") }
        switch e.code {
        case .notFound:
            if let ref = imageRef { return EngineError(.notFound, "No such image: \(normalized(ref))") }
            return EngineError(.notFound, e.message)
        case .conflict: return EngineError(.conflict, e.message)
        case .invalidArgument: return EngineError(.invalidArgument, e.message)
        case .invalidState: return EngineError(.invalidState, e.message)
        case .system: return EngineError(.system, e.message)
        }
    }

    /// `busybox` → `busybox:latest`, as Docker words "No such image".
    static func normalized(_ ref: String) -> String {
        if ref.contains("@") || ref.hasPrefix("sha256:") { return ref }
        let last = ref.split(separator: "/").last ?? ""
        return last.contains(":") ? ref : ref + ":latest"
    }

    static func trimmed(_ s: String) -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        guard let a = s.firstIndex(where: { !isSpace($0) }), let b = s.lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(s[a...b])
    }

    static func validName(_ s: String) -> Bool {
        let u = Array(s.utf8)
        func alnum(_ c: UInt8) -> Bool { (48...57).contains(c) || (65...90).contains(c) || (97...122).contains(c) }
        guard u.count >= 2, alnum(u[0]) else { return false }
        return u.dropFirst().allSatisfy { alnum($0) || $0 == 95 || $0 == 46 || $0 == 45 }
    }

    static func randomID() -> String {
        var g = SystemRandomNumberGenerator()
        let hex = Array("0123456789abcdef")
        return String((0..<64).map { _ in hex[Int(g.next() % 16)] })
    }

    static let adjectives = ["admiring", "bold", "brave", "clever", "eager", "focused", "gallant", "happy", "jolly",
                             "keen", "nifty", "quirky", "serene", "stoic", "vibrant", "zealous"]
    static let surnames = ["babbage", "curie", "darwin", "euler", "fermat", "gauss", "hopper", "lovelace", "noether",
                           "pascal", "ritchie", "shannon", "thompson", "turing", "wozniak", "yalow"]

    static func randomName() -> String { "\(adjectives.randomElement()!)_\(surnames.randomElement()!)" }

    /// A file from the topmost layer that has it (before the overlay is mounted).
    static func readFromLayers(_ lower: [String], _ path: String) -> String {
        for dir in lower {
            if let text = try? FileSystem.readString(dir + "/" + path) { return text }
        }
        return ""
    }

    static func lookupUser(_ name: String, passwd: String, group: String) -> (uid: UInt32, gid: UInt32, additionalGids: [UInt32])? {
        for line in passwd.split(separator: "\n") {
            let f = line.split(separator: ":", omittingEmptySubsequences: false)
            guard f.count >= 4, f[0] == name || f[2] == name, let uid = UInt32(f[2]), let gid = UInt32(f[3]) else { continue }
            let extra = group.split(separator: "\n").compactMap { g -> UInt32? in
                let gf = g.split(separator: ":", omittingEmptySubsequences: false)
                guard gf.count >= 4, gf[3].split(separator: ",").contains(f[0]) else { return nil }
                return UInt32(gf[2])
            }
            return (uid, gid, extra.filter { $0 != gid })
        }
        return nil
    }

    static func lookupGroup(_ name: String, group: String) -> UInt32? {
        for line in group.split(separator: "\n") {
            let f = line.split(separator: ":", omittingEmptySubsequences: false)
            if f.count >= 3, f[0] == name { return UInt32(f[2]) }
        }
        return nil
    }
}

/// Reads Docker json-file records appended since the last call.
struct LogReader {
    let path: String
    var offset: Int64 = 0
    var partial: [UInt8] = []

    init(path: String) { self.path = path }

    struct Line: Decodable {
        var log: String
        var stream: String
    }

    mutating func readAvailable() -> [Engine.LogRecord] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 65536)
        var out: [Engine.LogRecord] = []
        let decoder = JSONDecoder()
        while true {
            let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            offset += Int64(n)
            partial += buf[0..<n]
            while let nl = partial.firstIndex(of: 10) {
                let line = Array(partial[..<nl])
                partial.removeSubrange(...nl)
                if let rec = try? decoder.decode(Line.self, from: Data(line)) {
                    out.append(Engine.LogRecord(stderr: rec.stream == "stderr", bytes: Array(rec.log.utf8)))
                }
            }
        }
        return out
    }
}

/// A row of `docker images`, as plain values.
public struct ImageSummary: Sendable {
    public var id: String
    public var repoTags: [String]
    public var repoDigests: [String]
    public var created: Int64
    public var size: Int64
    public var labels: [String: String]
}

/// What `docker image inspect` shows.
public struct ImageDetails: Sendable {
    public var id: String
    public var repoTags: [String]
    public var repoDigests: [String]
    public var created: String
    public var author: String
    public var architecture: String
    public var os: String
    public var size: Int64
    /// The image's run configuration (Docker's `Config` keys).
    public var config: ContainerConfig?
    public var layers: [String]
}
