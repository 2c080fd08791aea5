import BerthOS
import BerthVolumes
import FoundationEssentials
import Glibc

/// A container's mount as its record keeps it and inspect shows it (Docker's `MountPoint`),
/// plus what rebuilding it for `--volumes-from` needs.
public struct ContainerMount: Codable, Sendable, Equatable {
    /// `bind`, `volume` or `tmpfs`.
    public var type: String
    /// The volume's name; empty for binds and tmpfs.
    public var name = ""
    /// The host path: a bind's source, a volume's `_data`.
    public var source = ""
    public var destination: String
    public var driver = ""
    /// The `-v` mode text (`ro`, `z`).
    public var mode = ""
    public var rw = true
    public var propagation = ""
    public var recursive = true
    /// Mount this directory of the volume rather than all of it.
    public var subpath = ""
}

/// A volume as the API shows it.
public struct VolumeDetails: Sendable {
    public var name: String
    public var driver: String
    public var mountpoint: String
    public var createdAt: String
    public var labels: [String: String]
    public var options: [String: String]
    public var anonymous: Bool
    /// IDs of the containers (in any state) that mount it.
    public var users: [String]
}

/// The volumes a container being created takes: what its record keeps, and what to undo if
/// the create fails after all.
struct MountPlan {
    var mounts: [ContainerMount] = []
    /// Volumes made for this container.
    var created: [String] = []
    /// Volumes it uses (created or not), mounted by the local driver if they have options.
    var used: [String] = []

    /// `hc` with every bind and volume of the plan in `Mounts`, volumes by name: what the spec
    /// builder sees. Tmpfs mounts stay as they were asked for.
    func specHostConfig(_ hc: DockerHostConfig) -> DockerHostConfig {
        var out = hc
        out.binds = nil
        out.mounts = (hc.mounts ?? []).filter { $0.type == "tmpfs" } + mounts.compactMap { m in
            switch m.type {
            case "bind":
                return .init(target: m.destination, source: m.source, type: "bind", readOnly: !m.rw,
                             bindOptions: .init(propagation: m.propagation, nonRecursive: m.recursive ? nil : true))
            case "volume":
                return .init(target: m.destination, source: m.name, type: "volume", readOnly: !m.rw,
                             volumeOptions: m.subpath.isEmpty ? nil : .init(subpath: m.subpath))
            default:
                return nil
            }
        }
        return out
    }
}

extension Engine {
    // MARK: Volume API

    /// `docker volume create`: idempotent for an existing name; no name means a random one.
    public func createVolume(name: String?, driver: String?, labels: [String: String],
                             options: [String: String]) throws(EngineError) -> VolumeDetails {
        let name = name.flatMap { $0.isEmpty ? nil : $0 } ?? VolumeStore.randomName()
        let (volume, created) = try Self.volumeCall { () throws(VolumeError) in
            try volumes.create(name: name, driver: driver ?? "", labels: labels, options: options)
        }
        if created { publish("volume", "create", id: name, attributes: ["driver": volume.driver]) }
        return details(volume)
    }

    public func listVolumes() -> [VolumeDetails] { volumes.list().map(details) }

    public func volume(_ name: String) throws(EngineError) -> VolumeDetails {
        details(try Self.volumeCall { () throws(VolumeError) in try volumes.get(name) })
    }

    /// `docker volume rm`: refused while a container uses it, even with `force`, which only
    /// makes an unknown name no error.
    public func removeVolume(_ name: String, force: Bool) throws(EngineError) {
        guard let volume = try? volumes.get(name) else {
            if force { return }
            throw EngineError(.notFound, "get \(name): no such volume")
        }
        let users = volumeUsers(name)
        guard users.isEmpty else {
            throw EngineError(.conflict, "remove \(name): volume is in use - [\(users.joined(separator: ", "))]")
        }
        try Self.volumeCall { () throws(VolumeError) in try volumes.remove(name) }
        publish("volume", "destroy", id: name, attributes: ["driver": volume.driver])
    }

    /// Removes the volumes no container uses that `include` accepts; returns their names and
    /// the bytes freed.
    public func pruneVolumes(where include: @Sendable (VolumeDetails) -> Bool) -> (deleted: [String], reclaimed: Int64) {
        var deleted: [String] = []
        var reclaimed: Int64 = 0
        for volume in volumes.list().map(details) where volume.users.isEmpty && include(volume) {
            let size = volumes.size(volume.name)
            guard (try? removeVolume(volume.name, force: false)) != nil else { continue }
            deleted.append(volume.name)
            reclaimed += size
        }
        return (deleted, reclaimed)
    }

    /// Every volume with the bytes it holds, for `system df`.
    public func volumeUsage() -> [(volume: VolumeDetails, size: Int64)] {
        volumes.list().map { (details($0), volumes.size($0.name)) }
    }

    func details(_ v: Volume) -> VolumeDetails {
        VolumeDetails(name: v.name, driver: v.driver, mountpoint: volumes.mountpoint(v.name), createdAt: v.createdAt,
                      labels: v.labels, options: v.options, anonymous: v.anonymous, users: volumeUsers(v.name))
    }

    func volumeUsers(_ name: String) -> [String] {
        containers.values.filter { rec in (rec.mounts ?? []).contains { $0.type == "volume" && $0.name == name } }
            .map(\.id).sorted()
    }

    static func volumeCall<T>(_ body: () throws(VolumeError) -> T) throws(EngineError) -> T {
        do { return try body() } catch {
            switch error.code {
            case .invalidArgument: throw EngineError(.invalidArgument, error.message)
            case .notFound: throw EngineError(.notFound, error.message)
            case .conflict: throw EngineError(.conflict, error.message)
            case .system: throw EngineError(.system, error.message)
            }
        }
    }

    // MARK: Containers' mounts

    /// Resolves the mounts of a container being created, in Docker's order: `VolumesFrom`, then
    /// the user's binds and mounts (which win over it), then anonymous volumes for the
    /// container's and image's `Volumes` not mounted otherwise. Named volumes are created on
    /// first use and new, empty ones filled from the image (`layers`, topmost first) unless
    /// `nocopy`. Everything is checked before anything is touched; on failure what was done is
    /// undone.
    func planMounts(config: DockerContainerConfig, hostConfig hc: DockerHostConfig, imageVolumes: [String],
                    layers: [String]) throws(EngineError) -> MountPlan {
        let requested = try SpecBuilder.bindRequests(hc.binds ?? []) + SpecBuilder.mountRequests(hc.mounts ?? [])
        let tmpfs = try SpecBuilder.tmpfsRequests(hc.tmpfs ?? [:])
        var taken = Set<String>()
        for r in requested + tmpfs where !taken.insert(r.destination).inserted {
            throw EngineError(.invalidArgument, "Duplicate mount point: \(r.destination)")
        }
        for r in requested where r.kind == .bind && !r.fromBinds && !FileSystem.exists(r.source) {
            throw EngineError(.invalidArgument, "invalid mount config for type \"bind\": bind source path does not exist: \(r.source)")
        }
        var inherited: [ContainerMount] = []
        for entry in hc.volumesFrom ?? [] {
            let parts = entry.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            let mode = parts.count == 2 ? parts[1] : ""
            guard parts.count <= 2, !parts[0].isEmpty, ["", "ro", "rw"].contains(mode) else {
                throw EngineError(.invalidArgument, "invalid VolumesFrom: \"\(entry)\": expected container[:ro|rw]")
            }
            for var m in try container(parts[0]).mounts ?? [] where m.type != "tmpfs" && taken.insert(m.destination).inserted {
                if !mode.isEmpty {
                    m.rw = mode == "rw"
                    m.mode = mode
                }
                inherited.append(m)
            }
        }
        var anonymous: [String] = []
        for path in Set((config.volumes ?? [:]).keys).union(imageVolumes).sorted() {
            let dst = try SpecBuilder.cleanDestination(path)
            if taken.insert(dst).inserted { anonymous.append(dst) }
        }

        var plan = MountPlan()
        do throws(EngineError) {
            var fills: [(volume: String, path: String)] = []
            for m in inherited where m.type == "volume" { try use(m.name, plan: &plan) }
            plan.mounts = inherited
            for r in requested {
                switch r.kind {
                case .bind:
                    if !FileSystem.exists(r.source) {
                        // Binds' legacy behaviour: a missing host path becomes a directory.
                        try Self.system { () throws(SystemError) in try FileSystem.makeDirectories(r.source, mode: 0o755) }
                    }
                    plan.mounts.append(ContainerMount(type: "bind", source: r.source, destination: r.destination, mode: r.mode,
                                                      rw: !r.readOnly, propagation: r.propagation, recursive: r.recursive))
                case .volume:
                    plan.mounts.append(try takeVolume(r, plan: &plan, fills: &fills))
                case .tmpfs:
                    plan.mounts.append(ContainerMount(type: "tmpfs", destination: r.destination, rw: !r.readOnly))
                }
            }
            for dst in anonymous {
                plan.mounts.append(try takeVolume(.init(kind: .volume, source: "", destination: dst), plan: &plan, fills: &fills))
            }
            try fillFromImage(fills, layers: layers)
        } catch {
            undoMounts(plan)
            throw error
        }
        for name in plan.created {
            publish("volume", "create", id: name, attributes: ["driver": VolumeStore.localDriver])
        }
        return plan
    }

    /// The volume a request names (or a new anonymous one), created if missing and noted for
    /// filling when new and empty.
    private func takeVolume(_ r: SpecBuilder.MountRequest, plan: inout MountPlan,
                            fills: inout [(volume: String, path: String)]) throws(EngineError) -> ContainerMount {
        let name = r.source.isEmpty ? VolumeStore.randomName() : r.source
        var labels = r.volumeLabels
        if r.source.isEmpty { labels[VolumeStore.anonymousLabel] = "" }
        let (volume, created) = try Self.volumeCall { () throws(VolumeError) in
            try volumes.create(name: name, driver: r.volumeDriver, labels: labels, options: r.volumeOptions)
        }
        if created { plan.created.append(name) }
        try use(name, plan: &plan)
        if !r.subpath.isEmpty {
            try Self.volumeCall { () throws(VolumeError) in try volumes.checkSubpath(name, r.subpath) }
        } else if !r.noCopy && volumes.isEmpty(name) {
            fills.append((name, r.destination))
        }
        return ContainerMount(type: "volume", name: name, source: volumes.mountpoint(name), destination: r.destination,
                              driver: volume.driver, mode: r.mode, rw: !r.readOnly, propagation: r.propagation,
                              subpath: r.subpath)
    }

    private func use(_ name: String, plan: inout MountPlan) throws(EngineError) {
        try Self.volumeCall { () throws(VolumeError) in try volumes.activate(name) }
        plan.used.append(name)
    }

    /// Copies the image's content at each path into its volume, through a read-only overlay
    /// of the image's layers (whiteouts applied) mounted for the purpose.
    private func fillFromImage(_ fills: [(volume: String, path: String)], layers: [String]) throws(EngineError) {
        guard !fills.isEmpty, !layers.isEmpty else { return }
        let view = root + "/tmp/image-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
        // overlayfs wants two lower directories when it has no upper one.
        let bottom = view + ".bottom"
        try Self.system { () throws(SystemError) in
            try FileSystem.makeDirectories(view, mode: 0o700)
            try FileSystem.makeDirectories(bottom, mode: 0o700)
        }
        defer {
            rmdir(view)
            rmdir(bottom)
        }
        let escape: (String) -> String = { path in
            path.reduce(into: "") { out, c in
                if c == "\\" || c == ":" || c == "," { out.append("\\") }
                out.append(c)
            }
        }
        let options = "lowerdir=" + (layers + [bottom]).map(escape).joined(separator: ":")
        guard Glibc.mount("overlay", view, "overlay", UInt(MS_RDONLY), options) == 0 else {
            throw EngineError(.system, SystemError("mount the image's layers on \(view)").message)
        }
        defer { umount2(view, Int32(MNT_DETACH)) }
        for fill in fills {
            try Self.volumeCall { () throws(VolumeError) in try volumes.fill(fill.volume, from: view, path: fill.path) }
        }
    }

    /// Undoes a plan whose container was not created: its new volumes go, the others are left
    /// as they were.
    func undoMounts(_ plan: MountPlan) {
        for name in plan.created {
            try? volumes.remove(name)
        }
        for name in Set(plan.used).subtracting(plan.created) where volumeUsers(name).isEmpty {
            try? volumes.deactivate(name)
        }
    }

    /// After a container's removal: its volumes that no other container uses are unmounted,
    /// and anonymous ones removed when asked (`docker rm -v`, `--rm`). Named volumes stay.
    func releaseVolumes(of rec: ContainerRecord, removeAnonymous: Bool) {
        for m in rec.mounts ?? [] where m.type == "volume" && volumeUsers(m.name).isEmpty {
            if removeAnonymous, let volume = try? volumes.get(m.name), volume.anonymous {
                try? removeVolume(m.name, force: true)
            } else {
                try? volumes.deactivate(m.name)
            }
        }
    }
}
