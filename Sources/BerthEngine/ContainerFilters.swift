import BerthImages
import BerthOS
import FoundationEssentials
import Glibc

/// The `filters` of `GET /containers/json` (`docker ps --filter`), validated and matched as
/// dockerd's daemon/list.go does. Pure: what needs the engine's other state (images, other
/// containers) arrives resolved in a `Context`.
public struct ContainerFilters: Sendable, Equatable {
    /// dockerd's `acceptedPsFilterTags`.
    public static let keys: Set<String> = [
        "ancestor", "before", "exited", "health", "id", "label", "name", "status", "since",
        "volume", "network", "is-task", "publish", "expose",
    ]
    static let statuses: Set<String> = ["created", "restarting", "running", "removing", "paused", "exited", "dead"]
    static let healthStates: Set<String> = ["starting", "healthy", "unhealthy", "none"]

    public private(set) var values: [String: [String]]
    let exitCodes: [Int32]

    /// Checks keys and the values dockerd checks (`status`, `health`, `exited`).
    public init(_ values: [String: [String]] = [:]) throws(EngineError) {
        for key in values.keys where !Self.keys.contains(key) {
            throw EngineError(.invalidArgument, "invalid filter '\(key)'")
        }
        for value in values["status"] ?? [] where !Self.statuses.contains(value) {
            throw EngineError(.invalidArgument, "invalid filter 'status=\(value)'")
        }
        for value in values["health"] ?? [] where !Self.healthStates.contains(value) {
            throw EngineError(.invalidArgument, "Unrecognised filter value for health: \(value)")
        }
        var codes: [Int32] = []
        for value in values["exited"] ?? [] {
            guard let code = Int32(value) else {
                throw EngineError(.invalidArgument, "strconv.Atoi: parsing \"\(value)\": invalid syntax")
            }
            codes.append(code)
        }
        self.values = values.filter { !$0.value.isEmpty }
        exitCodes = codes
    }

    /// A `status` filter lists stopped containers without `all`, as dockerd's `foldFilter` does.
    public var impliesAll: Bool { values["status"] != nil }

    /// The container references and image IDs the filters name, resolved by the engine.
    public struct Context: Sendable {
        /// Image IDs of each `ancestor` value and of the images built on it.
        public var ancestorImageIDs: Set<String> = []
        /// `created` of the `before` and `since` containers.
        public var beforeCreated: String?
        public var sinceCreated: String?
        public init() {}
    }

    public func matches(_ rec: ContainerRecord, _ context: Context) -> Bool {
        let bareName = String(rec.name.dropFirst())
        guard accepts("id", { Self.match($0, rec.id) }),
              accepts("name", { Self.match($0, rec.name) || Self.match($0, bareName) }),
              accepts("status", { $0 == rec.status.rawValue }),
              // Health checks are not recorded yet: every container is `none`.
              accepts("health", { $0 == "none" }),
              accepts("ancestor", { context.ancestorImageIDs.contains(rec.imageID) || Self.sameImage($0, rec.image) }),
              accepts("volume", { Self.mountPoints(rec).contains($0) }),
              accepts("network", { $0 == (rec.hostConfig.networkMode ?? "default") }),
              accepts("expose", { Self.exposes(rec, $0) }),
              // Berth has no published ports yet, and no swarm tasks.
              accepts("publish", { _ in false }),
              accepts("is-task", { !ContainerFilters.dockerBool($0) }),
              labelsMatch(rec.config.labels ?? [:], key: "label")
        else { return false }
        if !exitCodes.isEmpty {
            let stopped = rec.status == .exited || rec.status == .dead
            guard stopped, rec.startedAt != ContainerRecord.zeroTime, exitCodes.contains(rec.exitCode) else { return false }
        }
        if let before = context.beforeCreated, !(rec.created < before) { return false }
        if let since = context.sinceCreated, !(rec.created > since) { return false }
        return true
    }

    /// True when `key` is not filtered on, or one of its values holds (values of a key are ORed).
    func accepts(_ key: String, _ holds: (String) -> Bool) -> Bool {
        guard let wanted = values[key] else { return true }
        return wanted.contains(where: holds)
    }

    /// Docker's `MatchKVList`: every `k` or `k=v` value must hold (values of `label` are ANDed).
    func labelsMatch(_ labels: [String: String], key: String) -> Bool {
        (values[key] ?? []).allSatisfy { LabelFilter.holds($0, in: labels) }
    }

    /// Docker's `filters.Match`: equal, or the value as a regular expression found in `source`
    /// (so an ID prefix matches, and `^/web$` pins a name). A malformed pattern matches nothing.
    static func match(_ pattern: String, _ source: String) -> Bool {
        if pattern == source { return true }
        guard let regex = try? Regex(pattern) else { return false }
        return source.contains(regex)
    }

    /// `busybox` and `busybox:latest` name the same image.
    static func sameImage(_ a: String, _ b: String) -> Bool {
        Engine.normalized(a) == Engine.normalized(b)
    }

    /// Sources and destinations of the container's binds and mounts, as the `volume` filter
    /// matches them (a named volume's source is its name).
    static func mountPoints(_ rec: ContainerRecord) -> Set<String> {
        var out: Set<String> = []
        for bind in rec.hostConfig.binds ?? [] {
            let parts = bind.split(separator: ":").map(String.init)
            out.formUnion(parts.prefix(2))
        }
        for mount in rec.hostConfig.mounts ?? [] {
            if let s = mount.source, !s.isEmpty { out.insert(s) }
            if let t = mount.target { out.insert(t) }
        }
        return out
    }

    /// `expose=80` or `expose=80/udp` against the config's `ExposedPorts` (`80/tcp`).
    static func exposes(_ rec: ContainerRecord, _ value: String) -> Bool {
        let port = value.contains("/") ? value : value + "/tcp"
        return rec.config.exposedPorts?[port] != nil
    }

    /// Docker's `strconv.ParseBool` for `is-task`.
    static func dockerBool(_ s: String) -> Bool { ["1", "t", "T", "true", "TRUE", "True"].contains(s) }
}

/// The filters of `POST /containers/prune`: `until` (created before), `label` and `label!`.
public struct ContainerPruneFilters: Sendable, Equatable {
    public static let keys: Set<String> = ["until", "label", "label!"]

    /// Nanoseconds since the epoch; containers created after it are kept.
    public var untilNano: Int64?
    var labels: ContainerFilters
    var notLabels: [String]

    /// `now` (nanoseconds) anchors durations such as `until=24h`.
    public init(_ values: [String: [String]] = [:], now: Int64) throws(EngineError) {
        for key in values.keys where !Self.keys.contains(key) {
            throw EngineError(.invalidArgument, "invalid filter '\(key)'")
        }
        let until = values["until"] ?? []
        guard until.count <= 1 else { throw EngineError(.invalidArgument, "more than one until filter specified") }
        untilNano = try until.first.map { text throws(EngineError) in try DockerTime.nanoseconds(text, now: now) }
        // Reuses the `label` matching of `docker ps`; `label!` has no ps counterpart.
        var plain = values
        let negated = plain.removeValue(forKey: "label!")
        plain["until"] = nil
        labels = try ContainerFilters(plain)
        notLabels = negated ?? []
    }

    public func matches(_ rec: ContainerRecord) -> Bool {
        if let untilNano, let created = Timestamp.nanoseconds(rfc3339: rec.created), created > untilNano { return false }
        guard labels.labelsMatch(rec.config.labels ?? [:], key: "label") else { return false }
        // dockerd keeps a container only when every `label!` condition holds for it.
        let tagged = rec.config.labels ?? [:]
        if !notLabels.isEmpty, notLabels.allSatisfy({ LabelFilter.holds($0, in: tagged) }) { return false }
        return true
    }
}

/// Query times (`since`, `until`) with the engine's error for a bad one.
enum DockerTime {
    static func nanoseconds(_ text: String, now: Int64) throws(EngineError) -> Int64 {
        guard let n = Timestamp.nanoseconds(query: text, now: now) else {
            throw EngineError(.invalidArgument, "failed to parse value as time or duration: \"\(text)\"")
        }
        return n
    }
}
