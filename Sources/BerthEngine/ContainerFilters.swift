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
        (values[key] ?? []).allSatisfy { Self.labelHolds($0, labels) }
    }

    static func labelHolds(_ want: String, _ labels: [String: String]) -> Bool {
        let parts = want.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let have = labels[parts[0]] else { return false }
        return parts.count == 1 || have == parts[1]
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
        if let untilNano, let created = DockerTime.rfc3339(rec.created), created > untilNano { return false }
        guard labels.labelsMatch(rec.config.labels ?? [:], key: "label") else { return false }
        // dockerd keeps a container only when every `label!` condition holds for it.
        let tagged = rec.config.labels ?? [:]
        if !notLabels.isEmpty, notLabels.allSatisfy({ ContainerFilters.labelHolds($0, tagged) }) { return false }
        return true
    }
}

/// Times as dockerd takes them in queries (Go's `timetypes.GetTimestamp`): unix seconds with
/// an optional fraction (`1700000000.5`), RFC 3339 (`2024-01-02T03:04:05.5Z`, an offset, or
/// just the date), or a Go duration (`10m`, `1h30m`) counted back from `now`.
public enum DockerTime {
    /// Nanoseconds since the epoch.
    public static func nanoseconds(_ text: String, now: Int64) throws(EngineError) -> Int64 {
        if let n = unix(text) ?? rfc3339(text) { return n }
        if let d = duration(text) { return now - d }
        throw EngineError(.invalidArgument, "failed to parse value as time or duration: \"\(text)\"")
    }

    /// `seconds[.fraction]`, the form the docker CLI sends.
    static func unix(_ text: String) -> Int64? {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = parts.first, !whole.isEmpty, whole.allSatisfy(\.isASCIIDigit), let seconds = Int64(whole) else { return nil }
        var nanos: Int64 = 0
        if parts.count == 2 {
            guard parts[1].allSatisfy(\.isASCIIDigit), parts[1].count <= 9 else { return nil }
            nanos = Int64(parts[1] + String(repeating: "0", count: 9 - parts[1].count)) ?? 0
        }
        return seconds * 1_000_000_000 + nanos
    }

    /// RFC 3339 and its shorter forms; a time without a zone is taken as UTC.
    public static func rfc3339(_ text: String) -> Int64? {
        let u = Array(text.utf8)
        func number(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= u.count else { return nil }
            var v = 0
            for c in u[from..<(from + count)] {
                guard c >= 48 && c <= 57 else { return nil }
                v = v * 10 + Int(c - 48)
            }
            return v
        }
        guard let year = number(0, 4), u.count >= 10, u[4] == 45, let month = number(5, 2), u[7] == 45,
              let day = number(8, 2) else { return nil }
        var hour = 0, minute = 0, second = 0, nanos: Int64 = 0, offset = 0
        var i = 10
        if i < u.count {
            guard u[i] == 84 || u[i] == 116, let h = number(11, 2), u.count > 13, u[13] == 58, let m = number(14, 2) else { return nil }
            hour = h; minute = m; i = 16
            if i < u.count, u[i] == 58 {
                guard let s = number(17, 2) else { return nil }
                second = s; i = 19
                if i < u.count, u[i] == 46 {
                    i += 1
                    var digits = 0
                    while i < u.count, u[i] >= 48, u[i] <= 57 {
                        if digits < 9 { nanos = nanos * 10 + Int64(u[i] - 48) }
                        digits += 1; i += 1
                    }
                    guard digits > 0 else { return nil }
                    for _ in min(digits, 9)..<9 { nanos *= 10 }
                }
            }
            if i < u.count {
                if u[i] == 90 || u[i] == 122 {
                    i += 1
                } else if u[i] == 43 || u[i] == 45, let oh = number(i + 1, 2), i + 3 < u.count, u[i + 3] == 58,
                          let om = number(i + 4, 2) {
                    offset = (oh * 3600 + om * 60) * (u[i] == 43 ? 1 : -1)
                    i += 6
                } else {
                    return nil
                }
            }
            guard i == u.count else { return nil }
        }
        guard (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        var t = tm()
        t.tm_year = Int32(year - 1900); t.tm_mon = Int32(month - 1); t.tm_mday = Int32(day)
        t.tm_hour = Int32(hour); t.tm_min = Int32(minute); t.tm_sec = Int32(second)
        return (Int64(timegm(&t)) - Int64(offset)) * 1_000_000_000 + nanos
    }

    /// Go's `time.ParseDuration` (`300ms`, `1.5h`, `2h45m`), in nanoseconds.
    static func duration(_ text: String) -> Int64? {
        var s = Substring(text)
        var sign: Double = 1
        if s.first == "-" || s.first == "+" {
            if s.first == "-" { sign = -1 }
            s = s.dropFirst()
        }
        if s == "0" { return 0 }
        guard !s.isEmpty else { return nil }
        let units: [(String, Double)] = [("ns", 1), ("us", 1e3), ("µs", 1e3), ("μs", 1e3), ("ms", 1e6),
                                         ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
        var total: Double = 0
        while !s.isEmpty {
            let number = s.prefix { $0.isASCIIDigit || $0 == "." }
            guard !number.isEmpty, number != ".", let value = Double(number) else { return nil }
            s = s.dropFirst(number.count)
            let unitText = s.prefix { !$0.isASCIIDigit && $0 != "." }
            guard let unit = units.first(where: { $0.0 == unitText }) else { return nil }
            s = s.dropFirst(unitText.count)
            total += value * unit.1
        }
        return Int64(sign * total)
    }

    /// The current wall-clock time in nanoseconds.
    public static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
