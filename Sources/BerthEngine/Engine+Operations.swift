import BerthImages
import BerthOS
import FoundationEssentials
import Glibc

/// `docker ps`, rename, update, restart and container prune.
extension Engine {
    // MARK: List

    public struct ListOptions: Sendable {
        public var all = false
        /// The newest N (stopped ones included); nil for no limit.
        public var limit: Int?
        /// Compute `SizeRw` and `SizeRootFs` (a walk of each writable layer).
        public var size = false
        public var filters: ContainerFilters

        public init(all: Bool = false, limit: Int? = nil, size: Bool = false, filters: ContainerFilters) {
            self.all = all
            self.limit = limit.flatMap { $0 > 0 ? $0 : nil }
            self.size = size
            self.filters = filters
        }
    }

    public struct Listing: Sendable {
        public var record: ContainerRecord
        /// Bytes in the writable layer, and that plus the image's.
        public var sizeRw: Int64?
        public var sizeRootFs: Int64?
    }

    /// Newest first, as `docker ps`.
    public func list(_ options: ListOptions) throws(EngineError) -> [Listing] {
        let context = try filterContext(options.filters)
        let everything = options.all || options.limit != nil || options.filters.impliesAll
        var rows = containers.values
            .filter { (everything || $0.running || $0.status == .paused || $0.status == .restarting)
                && options.filters.matches($0, context) }
            .sorted { $0.created > $1.created }
        if let limit = options.limit { rows = Array(rows.prefix(limit)) }
        return rows.map { rec in
            guard options.size else { return Listing(record: rec) }
            let rw = writableLayerSize(rec.id)
            let image = (try? images.image(rec.imageID))?.size ?? 0
            return Listing(record: rec, sizeRw: rw, sizeRootFs: rw + image)
        }
    }

    /// Resolves what the filters name: `before`/`since` containers (404 when missing, as dockerd)
    /// and `ancestor` images (an unknown image matches no container).
    func filterContext(_ filters: ContainerFilters) throws(EngineError) -> ContainerFilters.Context {
        var context = ContainerFilters.Context()
        for ref in filters.values["before"] ?? [] { context.beforeCreated = containers[try resolve(ref)]!.created }
        for ref in filters.values["since"] ?? [] { context.sinceCreated = containers[try resolve(ref)]!.created }
        let ancestors = (filters.values["ancestor"] ?? []).compactMap { try? images.image($0) }
        guard !ancestors.isEmpty else { return context }
        // Images built on an ancestor begin with all of its layers (Berth keeps no parent links).
        let all = ((try? images.list()) ?? []).compactMap { try? images.image($0.id.string) }
        for ancestor in ancestors {
            for image in all where image.id == ancestor.id || (!ancestor.diffIDs.isEmpty && image.diffIDs.starts(with: ancestor.diffIDs)) {
                context.ancestorImageIDs.insert(image.id.string)
            }
        }
        return context
    }

    func writableLayerSize(_ id: String) -> Int64 {
        guard let snapshot = try? images.snapshots.snapshot(container: id) else { return 0 }
        return DirectorySize.of(snapshot.mount.upper)
    }

    // MARK: Rename

    public func rename(_ ref: String, to requested: String) throws(EngineError) {
        let id = try resolve(ref)
        guard var rec = containers[id] else { throw EngineError(.notFound, "No such container: \(ref)") }
        guard requested != "/", !requested.isEmpty else {
            throw EngineError(.invalidArgument, "Neither old nor new names may be empty")
        }
        guard "/" + requested != rec.name, requested != rec.name else {
            throw EngineError(.invalidArgument, "Renaming a container with the same name as its current name")
        }
        let name: String
        do { name = try availableName(requested) } catch where error.code == .conflict {
            throw EngineError(.conflict, "Error when allocating new name: " + error.message)
        }
        let oldName = rec.name
        rec.name = name
        try persist(rec)
        containers[id] = rec
        publish(container: rec, "rename", extra: ["oldName": oldName])
    }

    // MARK: Update

    /// Resources and restart policy, as Docker's update applies them: a zero or empty field
    /// leaves the current value; a running container gets the new limits at once.
    public func update(_ ref: String, _ change: DockerContainerUpdate) async throws(EngineError) -> [String] {
        let id = try resolve(ref)
        guard let rec = containers[id] else { throw EngineError(.notFound, "No such container: \(ref)") }
        var hc = rec.hostConfig
        func cannot(_ why: String) -> EngineError { EngineError(.conflict, "Cannot update container \(id): \(why)") }
        if let v = change.blkioWeight, v != 0 { hc.blkioWeight = v }
        if let v = change.cpuShares, v != 0 { hc.cpuShares = v }
        if let v = change.nanoCpus, v != 0 { hc.nanoCpus = v }
        if let v = change.cpuPeriod, v != 0 { hc.cpuPeriod = v }
        if let v = change.cpuQuota, v != 0 { hc.cpuQuota = v }
        if let v = change.cpuRealtimePeriod, v != 0 { hc.cpuRealtimePeriod = v }
        if let v = change.cpuRealtimeRuntime, v != 0 { hc.cpuRealtimeRuntime = v }
        if let v = change.cpusetCpus, !v.isEmpty { hc.cpusetCpus = v }
        if let v = change.cpusetMems, !v.isEmpty { hc.cpusetMems = v }
        if let v = change.memory, v != 0 {
            // A limit above the swap limit already set is refused unless the swap moves too.
            let swap = hc.memorySwap ?? 0
            if swap > 0, v > swap, (change.memorySwap ?? 0) == 0 {
                throw cannot("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time")
            }
            hc.memory = v
        }
        if let v = change.memorySwap, v != 0 { hc.memorySwap = v }
        if let v = change.memoryReservation, v != 0 { hc.memoryReservation = v }
        if let v = change.pidsLimit { hc.pidsLimit = v }
        if let policy = change.restartPolicy, let name = policy.name, !name.isEmpty {
            if hc.autoRemove == true, name != "no" {
                throw cannot("Restart policy cannot be updated because AutoRemove is enabled for the container")
            }
            hc.restartPolicy = policy
            try Self.validateRestartPolicy(hc)
        }
        let resources = try SpecBuilder.resources(hc)
        if rec.running || rec.status == .paused {
            let bytes: Data
            do { bytes = try JSONEncoder().encode(resources) } catch { throw EngineError(.system, "encoding resources: \(error)") }
            let path = root + "/tmp/update-\(id).json"
            try Self.system { () throws(SystemError) in try FileSystem.writeAtomically(path, bytes, mode: 0o600) }
            let result = await runtime(["update", "--resources", path, id])
            unlink(path)
            guard result.succeeded else { throw cannot(Self.trimmed(result.output)) }
        }
        guard var current = containers[id] else { throw EngineError(.notFound, "No such container: \(ref)") }
        current.hostConfig = hc
        try persist(current)
        containers[id] = current
        publish(container: current, "update")
        return []
    }

    // MARK: Restart

    /// Stop (when running, with `timeout` as `stop` takes it), then start: the same container,
    /// a new run. A stopped container is just started.
    public func restart(_ ref: String, timeout: Int?, signal: String? = nil) async throws(EngineError) {
        let id = try resolve(ref)
        do { try await stop(id, timeout: timeout, signal: signal) } catch where error.code == .notModified {}
        try await start(id)
        if let rec = containers[id] { publish(container: rec, "restart") }
    }

    // MARK: Prune

    /// Removes the stopped containers the filters select; returns their IDs and the bytes
    /// their writable layers held.
    public func prune(_ filters: ContainerPruneFilters) async -> (deleted: [String], reclaimed: Int64) {
        let candidates = containers.values
            .filter { [.created, .exited, .dead].contains($0.status) && filters.matches($0) }
            .sorted { $0.created < $1.created }
        var deleted: [String] = []
        var reclaimed: Int64 = 0
        for rec in candidates {
            let size = writableLayerSize(rec.id)
            guard (try? await remove(rec.id, force: false)) != nil, containers[rec.id] == nil else { continue }
            deleted.append(rec.id)
            reclaimed += size
        }
        publish("container", "prune", id: "", attributes: ["reclaimed": String(reclaimed)])
        return (deleted, reclaimed)
    }
}

/// `POST /containers/{id}/update`: Docker's `UpdateConfig` (its `Resources` and `RestartPolicy`).
public struct DockerContainerUpdate: Codable, Sendable, Equatable {
    public var blkioWeight: UInt16?
    public var cpuShares: Int64?
    public var nanoCpus: Int64?
    public var cpuPeriod: Int64?
    public var cpuQuota: Int64?
    public var cpuRealtimePeriod: Int64?
    public var cpuRealtimeRuntime: Int64?
    public var cpusetCpus: String?
    public var cpusetMems: String?
    public var memory: Int64?
    public var memorySwap: Int64?
    public var memoryReservation: Int64?
    public var pidsLimit: Int64?
    public var restartPolicy: DockerHostConfig.RestartPolicy?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case blkioWeight = "BlkioWeight", cpuShares = "CpuShares", nanoCpus = "NanoCpus", cpuPeriod = "CpuPeriod"
        case cpuQuota = "CpuQuota", cpuRealtimePeriod = "CpuRealtimePeriod", cpuRealtimeRuntime = "CpuRealtimeRuntime"
        case cpusetCpus = "CpusetCpus", cpusetMems = "CpusetMems", memory = "Memory", memorySwap = "MemorySwap"
        case memoryReservation = "MemoryReservation", pidsLimit = "PidsLimit", restartPolicy = "RestartPolicy"
    }
}
