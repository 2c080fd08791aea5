import BerthDistribution
import BerthDNS
import BerthImages
import BerthNetwork
import BerthOCI
import BerthOS
import BerthVolumes
import FoundationEssentials
import Glibc

/// The engine: images and containers under one data root, with persistent state.
///
///     <root>/images/                    the image store (BerthImages)
///     <root>/runtime/                   berth-runtime's --root
///     <root>/containers/<id>/container.json, hosts, hostname, resolv.conf
///     <root>/containers/<id>/bundle/    config.json and rootfs (the overlay, mounted while running)
///     <root>/containers/<id>/monitor/   berth-monitor's directory: container.log, attach.sock, exit.json
///     <root>/networks/<id>.json         network definitions
///     <root>/netns/<id>                 a running container's network namespace (bind mount)
///
/// Knows nothing of HTTP. Each container runs under its own berth-monitor; the engine learns of
/// an exit from the monitor's exit.json.
public actor Engine {
    public nonisolated let root: String
    public nonisolated let runtimePath: String
    public nonisolated let monitorPath: String
    /// The static init bind-mounted as /sbin/docker-init for `--init`.
    public nonisolated let initPath: String
    let images: ImageStore
    /// Named and anonymous volumes (see Engine+Volumes).
    let volumes: VolumeStore
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
    var events = EventLog()
    /// Exec instances by ID, in memory only as in dockerd (see Engine+Exec).
    var execs: [String: ExecInstance] = [:]
    /// The restart policy's current delay per container, in milliseconds.
    var restartDelays: [String: Int] = [:]
    /// `runtime delete` of containers that just exited, still running.
    var runtimeDeletes: [String: Task<Void, Never>] = [:]
    let exitWatcher = ExitWatcher()
    /// Pulls and pushes through registries (see Engine+Distribution).
    let registry: RegistryClient
    // Networking (see Engine+Networks): the definitions by ID, their address allocators, what
    // each running container holds on the host, and the kernel side once set up.
    let networkOptions: NetworkOptions
    var networks: [String: NetworkDefinition] = [:]
    var allocators: [String: AddressAllocator] = [:]
    var allocators6: [String: AddressAllocator6] = [:]
    var sandboxes: [String: NetworkSandbox] = [:]
    var networkDriver: NetworkDriver?
    let dnsServer = EmbeddedDNS.makeServer()

    public init(root: String, runtimePath: String, monitorPath: String, initPath: String = "",
                insecureRegistries: [String] = [], registryMirrors: [String] = [],
                registryCertsDirectory: String = RegistryConfiguration.defaultCertsDirectory,
                network: NetworkOptions = NetworkOptions()) throws(EngineError) {
        let root = FileSystem.absolute(root)
        self.root = root
        networkOptions = network
        registry = RegistryClient(configuration: RegistryConfiguration(insecureRegistries: insecureRegistries, mirrors: registryMirrors,
                                                                       certsDirectory: registryCertsDirectory))
        self.runtimePath = runtimePath
        self.monitorPath = monitorPath
        self.initPath = initPath
        do {
            images = try ImageStore(root: root + "/images")
        } catch {
            throw Self.mapError(error)
        }
        volumes = try Self.volumeCall { () throws(VolumeError) in try VolumeStore(root: root + "/volumes") }
        volumes.removeLeftovers()
        try Self.system { () throws(SystemError) in
            try FileSystem.makeDirectories(root + "/containers", mode: 0o710)
            try FileSystem.makeDirectories(root + "/runtime", mode: 0o700)
            try FileSystem.makeDirectories(root + "/tmp", mode: 0o700)
        }
        let decoder = JSONDecoder()
        var loaded: [String: ContainerRecord] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: root + "/containers")) ?? [] {
            let path = root + "/containers/" + entry
            guard let bytes = try? FileSystem.readBytes(path + "/container.json") else {
                // A create or removal cut short by a crash: nothing was acknowledged for it.
                if umount2(path + "/bundle/rootfs", Int32(MNT_DETACH)) == 0 || errno == EINVAL || errno == ENOENT {
                    try? images.snapshots.remove(container: entry)
                    try? FileSystem.removeTree(path)
                }
                continue
            }
            guard let rec = try? decoder.decode(ContainerRecord.self, from: Data(bytes)) else { continue }
            loaded[rec.id] = rec
        }
        containers = loaded
        let exits = exitWatcher.events
        Task { [weak self] in
            for await (id, event) in exits { await self?.exitReported(id, event) }
        }
    }

    /// Resumes watching containers that were running when the daemon last stopped, and starts
    /// those their restart policy wants running.
    public func recover() {
        for rec in containers.values where rec.running { watchExit(rec.id) }
        // In the background: the API is served meanwhile, as dockerd does.
        Task { await restartAfterDaemonStart() }
    }

    // MARK: Paths

    func dir(_ id: String) -> String { root + "/containers/" + id }
    func monitorDir(_ id: String) -> String { dir(id) + "/monitor" }
    func rootfs(_ id: String) -> String { dir(id) + "/bundle/rootfs" }

    // MARK: Looking up

    /// Docker's order: full ID, then name, then a unique ID prefix.
    func resolve(_ ref: String) throws(EngineError) -> String {
        try Self.resolve(ref, in: containers)
    }

    static func resolve(_ ref: String, in containers: [String: ContainerRecord]) throws(EngineError) -> String {
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

    public func counts() -> (running: Int, stopped: Int, images: Int) {
        let running = containers.values.filter(\.running).count
        return (running, containers.count - running, (try? images.list().count) ?? 0)
    }

    // MARK: Helpers

    func runtime(_ args: [String]) async -> HelperProcess.Result {
        await HelperProcess.run(runtimePath, ["--root", root + "/runtime"] + args)
    }

    func persist(_ rec: ContainerRecord) throws(EngineError) {
        let bytes: Data
        do { bytes = try JSONEncoder().encode(rec) } catch { throw EngineError(.system, "encoding container.json: \(error)") }
        let path = dir(rec.id) + "/container.json"
        let isNew = !FileSystem.exists(path)
        try Self.system { () throws(SystemError) in
            try FileSystem.writeAtomically(path, bytes, mode: 0o600, durable: true)
            // A new container's directory entry must reach the disk too.
            if isNew { try FileSystem.syncDirectory(root + "/containers") }
        }
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

    /// `requested` as a stored name (`/web`) if it is valid and free, with dockerd's errors.
    func availableName(_ requested: String) throws(EngineError) -> String {
        let bare = requested.hasPrefix("/") ? String(requested.dropFirst()) : requested
        guard Self.validName(bare) else {
            throw EngineError(.invalidArgument, "Invalid container name (\(bare)), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        }
        let name = "/" + bare
        if let other = containers.values.first(where: { $0.name == name }) {
            throw EngineError(.conflict, "Conflict. The container name \"\(name)\" is already in use by container \"\(other.id)\". You have to remove (or rename) that container to be able to reuse that name.")
        }
        return name
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

    /// A regular file as the image's merged tree would show it, read from the layers before
    /// the overlay is mounted: from the topmost layer that has it, stopping at a whiteout, an
    /// opaque directory or a non-directory on the way, as overlayfs does. Each layer is its own
    /// root (ContainedRoot): a symlink resolves inside that layer only, never on the host, so a
    /// link whose target lives in a lower layer is not found. nil when missing; throws when the
    /// entry is not a regular file or exceeds `limit`.
    static func readFromLayers(_ lower: [String], _ path: String, limit: Int) throws(SystemError) -> [UInt8]? {
        let parts = path.split(separator: "/")
        for dir in lower {
            let layer = try ContainedRoot(dir)
            if let st = try layer.status(path) {
                if st.st_mode & S_IFMT == S_IFCHR && st.st_rdev == 0 { return nil }  // whiteout
                return try layer.readFile(path, limit: limit, finalSymlink: .followInRoot)
            }
            for depth in 1..<max(parts.count, 1) {
                let ancestor = parts.prefix(depth).joined(separator: "/")
                guard let st = try layer.status(ancestor) else { break }
                if st.st_mode & S_IFMT != S_IFDIR { return nil }  // a whiteout or a file hides what is below
                if try layer.extendedAttribute(ancestor, "trusted.overlay.opaque") == Array("y".utf8) { return nil }
            }
        }
        return nil
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
