/// One line of /proc/PID/mountinfo (proc(5)):
/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`.
public struct MountinfoEntry: Sendable, Equatable {
    /// The directory of the mounted filesystem that is visible at `mountPoint`.
    public var root: String
    public var mountPoint: String
    public var fsType: String
    public var source: String
    /// Per-superblock options; for a v1 cgroup mount they list its controllers (`rw,cpu,cpuacct`).
    public var superOptions: [String]

    public init(root: String, mountPoint: String, fsType: String, source: String, superOptions: [String]) {
        self.root = root; self.mountPoint = mountPoint; self.fsType = fsType
        self.source = source; self.superOptions = superOptions
    }

    /// Parses mountinfo text; malformed lines are skipped.
    public static func parse(_ text: String) -> [MountinfoEntry] {
        var entries: [MountinfoEntry] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            // Six fixed fields, optional fields, "-", then fstype, source, super options.
            guard fields.count >= 9, let dash = fields[6...].firstIndex(of: "-"), dash + 2 < fields.count else { continue }
            let superOptions = dash + 3 < fields.count ? fields[dash + 3].split(separator: ",").map(String.init) : []
            entries.append(MountinfoEntry(
                root: unescape(fields[3]), mountPoint: unescape(fields[4]),
                fsType: String(fields[dash + 1]), source: unescape(fields[dash + 2]),
                superOptions: superOptions))
        }
        return entries
    }

    /// mountinfo escapes space, tab, newline and backslash as three octal digits (`\040`).
    static func unescape(_ field: Substring) -> String {
        guard field.contains("\\") else { return String(field) }
        var bytes: [UInt8] = []
        let utf8 = Array(field.utf8)
        var index = 0
        while index < utf8.count {
            if utf8[index] == UInt8(ascii: "\\"), index + 3 < utf8.count,
               let value = UInt8(String(decoding: utf8[(index + 1)...(index + 3)], as: UTF8.self), radix: 8) {
                bytes.append(value)
                index += 4
            } else {
                bytes.append(utf8[index])
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// /proc/PID/cgroup (cgroups(7)): `hierarchy-ID:controller-list:cgroup-path`, where v1 lines
/// name their controllers (`4:memory:/a`, `1:name=systemd:/`) and the v2 line is `0::/a`.
public struct ProcessCgroups: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var controllers: [String]
        public var path: String
        public init(controllers: [String], path: String) { self.controllers = controllers; self.path = path }
    }

    /// v1 hierarchies: each line's controllers and the process's path in that hierarchy.
    public var legacy: [Entry]
    /// The process's path in the unified (v2) hierarchy, if it has one.
    public var unified: String?

    public init(legacy: [Entry] = [], unified: String? = nil) {
        self.legacy = legacy; self.unified = unified
    }

    public static func parse(_ text: String) -> ProcessCgroups {
        var result = ProcessCgroups()
        for line in text.split(separator: "\n") {
            // The path may itself contain ':', so split on the first two only.
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let path = String(parts[2])
            if parts[0] == "0" && parts[1].isEmpty {
                result.unified = path
            } else {
                result.legacy.append(Entry(controllers: parts[1].split(separator: ",").map(String.init), path: path))
            }
        }
        return result
    }

    /// The process's path in the v1 hierarchy holding any of `controllers`.
    public func legacyPath(for controllers: [String]) -> String? {
        legacy.first { entry in entry.controllers.contains { controllers.contains($0) } }?.path
    }
}

/// One mounted cgroup hierarchy.
public struct CgroupHierarchy: Sendable, Equatable {
    /// Where it is mounted, with the injected filesystem root already prepended.
    public var mountPoint: String
    /// The cgroup (relative to the hierarchy root) that appears at `mountPoint`; "/" unless the
    /// mount comes from inside a cgroup namespace or is a bind mount of a sub-cgroup.
    public var mountRoot: String
    /// v1 controllers and named hierarchies (`["cpu", "cpuacct"]`, `["name=systemd"]`); empty for cgroup2.
    public var controllers: [String]
    /// The injected filesystem root this hierarchy was found under; empty on a real host.
    public var fsRoot: String

    public var isUnified: Bool { controllers.isEmpty }
    /// "cpu,cpuacct", "name=systemd", or "unified".
    public var name: String { isUnified ? "unified" : controllers.joined(separator: ",") }

    public init(mountPoint: String, mountRoot: String = "/", controllers: [String], fsRoot: String = "") {
        self.mountPoint = mountPoint; self.mountRoot = mountRoot; self.controllers = controllers
        self.fsRoot = fsRoot
    }

    /// The directory of `cgroupPath` (relative to the hierarchy root, leading "/").
    public func directory(of cgroupPath: String) -> String {
        var path = cgroupPath
        if mountRoot != "/" {
            if path == mountRoot {
                path = "/"
            } else if path.hasPrefix(mountRoot + "/") {
                path = String(path.dropFirst(mountRoot.count))
            }
        }
        if path == "/" || path.isEmpty { return mountPoint }
        return mountPoint + path
    }
}

/// Which cgroup layout the host uses.
public enum CgroupMode: String, Sendable, Equatable {
    /// v1 controllers only.
    case legacy
    /// v1 controllers plus a cgroup2 mount (systemd's "hybrid", e.g. /sys/fs/cgroup/unified).
    case hybrid
    /// cgroup2 only.
    case unified
}

/// The cgroup hierarchies mounted on the host, as read from mountinfo.
public struct CgroupLayout: Sendable, Equatable {
    public var mode: CgroupMode
    /// v1 hierarchies, one per distinct controller set, in mountinfo order.
    public var legacy: [CgroupHierarchy]
    /// The cgroup2 hierarchy in hybrid and unified mode.
    public var unified: CgroupHierarchy?

    /// v1 controller names the parser recognises in super options, besides `name=...`.
    static let knownControllers: Set<String> = [
        "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "net_prio",
        "blkio", "perf_event", "hugetlb", "pids", "rdma", "misc", "debug",
    ]

    /// Detects the layout from mountinfo entries. `fsRoot` is prepended to every mount point
    /// (empty on a real host; a temp directory holding a fake tree in tests).
    public init(mounts: [MountinfoEntry], fsRoot: String = "") throws(CgroupError) {
        let preferredPrefix = "/sys/fs/cgroup"
        func preferred(_ entry: MountinfoEntry) -> Bool {
            entry.mountPoint == preferredPrefix || entry.mountPoint.hasPrefix(preferredPrefix + "/")
        }
        var legacy: [CgroupHierarchy] = []
        var legacyIsPreferred: [Bool] = []
        var unified: CgroupHierarchy?
        var unifiedRank = Int.max
        for entry in mounts {
            switch entry.fsType {
            case "cgroup":
                let controllers = entry.superOptions.filter { Self.knownControllers.contains($0) || $0.hasPrefix("name=") }
                guard !controllers.isEmpty else { continue }
                let hierarchy = CgroupHierarchy(mountPoint: fsRoot + entry.mountPoint, mountRoot: entry.root, controllers: controllers, fsRoot: fsRoot)
                // The same hierarchy is often mounted again inside containers' root filesystems;
                // keep the one under /sys/fs/cgroup, otherwise the first.
                if let index = legacy.firstIndex(where: { Set($0.controllers) == Set(controllers) }) {
                    if !legacyIsPreferred[index] && preferred(entry) {
                        legacy[index] = hierarchy
                        legacyIsPreferred[index] = true
                    }
                } else {
                    legacy.append(hierarchy)
                    legacyIsPreferred.append(preferred(entry))
                }
            case "cgroup2":
                let rank: Int
                switch entry.mountPoint {
                case preferredPrefix: rank = 0
                case preferredPrefix + "/unified": rank = 1
                default: rank = preferred(entry) ? 2 : 3
                }
                if rank < unifiedRank {
                    unified = CgroupHierarchy(mountPoint: fsRoot + entry.mountPoint, mountRoot: entry.root, controllers: [], fsRoot: fsRoot)
                    unifiedRank = rank
                }
            default:
                continue
            }
        }
        let hasControllers = legacy.contains { hierarchy in hierarchy.controllers.contains { !$0.hasPrefix("name=") } }
        switch (hasControllers, unified != nil) {
        case (true, false): mode = .legacy
        case (true, true): mode = .hybrid
        case (false, true): mode = .unified; legacy = []
        case (false, false): throw CgroupError(.unsupported, "no cgroup or cgroup2 filesystem is mounted (mountinfo lists none)")
        }
        self.legacy = legacy
        self.unified = unified
    }

    /// The v1 hierarchy holding `controller`, if mounted.
    public func legacyHierarchy(for controller: String) -> CgroupHierarchy? {
        legacy.first { $0.controllers.contains(controller) }
    }
}
