import BerthOCI
import BerthOS

/// Turns a Docker container configuration into an OCI runtime spec with Docker's semantics.
///
/// Pure: everything that needs the file system (users in the rootfs, volume paths, device
/// numbers, other containers' namespaces) comes in through `SpecBuilder.Lookups`.
public struct SpecBuilder {
    /// The injected look-ups. Each defaults to "not found".
    public struct Lookups {
        /// A user name (or numeric uid without group) → uid, gid and supplementary gids, from
        /// the rootfs's /etc/passwd and /etc/group.
        public var user: (String) -> (uid: UInt32, gid: UInt32, additionalGids: [UInt32])?
        /// A group name → gid, from the rootfs's /etc/group.
        public var group: (String) -> UInt32?
        /// A named volume → its host path.
        public var volume: (String) throws(EngineError) -> String
        /// (container reference, OCI namespace type) → the namespace path to join.
        public var namespacePath: (String, String) throws(EngineError) -> String
        /// A host device path → its type ("c"/"b"), numbers and mode.
        public var device: (String) -> DeviceInfo?
        /// The mount destination of a volume subpath → the host path the runtime binds from.
        /// The engine mounts the subpath there at each start, resolved inside the volume then,
        /// since the container may have replaced it with a symlink since create.
        public var volumeSubpath: (String) -> String

        public init(user: @escaping (String) -> (uid: UInt32, gid: UInt32, additionalGids: [UInt32])? = { _ in nil },
                    group: @escaping (String) -> UInt32? = { _ in nil },
                    volume: @escaping (String) throws(EngineError) -> String = { name throws(EngineError) in
                        throw EngineError(.notFound, "no such volume: \(name)")
                    },
                    namespacePath: @escaping (String, String) throws(EngineError) -> String = { ref, _ throws(EngineError) in
                        throw EngineError(.notFound, "No such container: \(ref)")
                    },
                    device: @escaping (String) -> DeviceInfo? = { _ in nil },
                    volumeSubpath: @escaping (String) -> String = { "/nonexistent/subpath" + $0 }) {
            self.user = user; self.group = group; self.volume = volume
            self.namespacePath = namespacePath; self.device = device; self.volumeSubpath = volumeSubpath
        }
    }

    public struct DeviceInfo: Sendable, Equatable {
        public var type: String
        public var major: Int64
        public var minor: Int64
        public var fileMode: UInt32?
        public init(type: String, major: Int64, minor: Int64, fileMode: UInt32? = nil) {
            self.type = type; self.major = major; self.minor = minor; self.fileMode = fileMode
        }
    }

    /// The spec plus the security options that were accepted but not applied.
    public struct Result: Sendable, Equatable {
        public var spec: Spec
        public var warnings: [String]
    }

    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    public static let initDestination = "/sbin/docker-init"
    public static let defaultShmSize: Int64 = 64 * 1024 * 1024

    /// Docker's default capability set (daemon/caps, oci/defaults).
    public static let defaultCapabilities = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    ]

    /// What a privileged container or `--cap-add ALL` gets.
    public static var allCapabilities: [String] { Capability.available }

    public static let defaultMaskedPaths = [
        "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
        "/sys/devices/virtual/powercap",
    ]

    public static let defaultReadonlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

    public static func build(config: DockerContainerConfig, hostConfig: DockerHostConfig, image: ImageConfig,
                             containerID: String, rootfs: String, hostsFile: String? = nil,
                             resolvConf: String? = nil, hostnameFile: String? = nil, initPath: String? = nil,
                             lookups: Lookups = Lookups()) throws(EngineError) -> Spec {
        try buildWithWarnings(config: config, hostConfig: hostConfig, image: image, containerID: containerID,
                              rootfs: rootfs, hostsFile: hostsFile, resolvConf: resolvConf,
                              hostnameFile: hostnameFile, initPath: initPath, lookups: lookups).spec
    }

    public static func buildWithWarnings(config: DockerContainerConfig, hostConfig hc: DockerHostConfig,
                                         image: ImageConfig, containerID: String, rootfs: String,
                                         hostsFile: String? = nil, resolvConf: String? = nil,
                                         hostnameFile: String? = nil, initPath: String? = nil,
                                         lookups: Lookups = Lookups()) throws(EngineError) -> Result {
        let imageConfig = image.config ?? ContainerConfig()
        let privileged = hc.privileged ?? false
        var warnings: [String] = []

        // Namespaces first: the hostname and sysctl rules depend on them.
        let namespaces = try buildNamespaces(hc, lookups: lookups)
        let hostUTS = !namespaces.contains { $0.type == "uts" }
        let hostNetwork = !namespaces.contains { $0.type == "network" }
        let hostIPC = !namespaces.contains { $0.type == "ipc" }
        let givenHostname = nonEmpty(config.hostname)
        if hostUTS && givenHostname != nil {
            throw EngineError(.invalidArgument, "Conflicting options: hostname and the UTS mode")
        }
        let hostname = hostUTS ? nil : (givenHostname ?? String(containerID.prefix(12)))

        // Process.
        var args = try commandLine(config: config, image: imageConfig)
        var process = Process(terminal: config.tty ?? false, args: args, cwd: "/")
        process.env = environment(config: config, image: imageConfig, hostname: hostname ?? "")
        process.cwd = nonEmpty(config.workingDir) ?? nonEmpty(imageConfig.workingDir) ?? "/"
        process.user = try user(nonEmpty(config.user) ?? nonEmpty(imageConfig.user) ?? "",
                                groupAdd: hc.groupAdd ?? [], lookups: lookups)
        let caps = try capabilities(add: hc.capAdd ?? [], drop: hc.capDrop ?? [], privileged: privileged)
        process.capabilities = Capabilities(bounding: caps, effective: caps, permitted: caps)
        process.rlimits = try rlimits(hc.ulimits ?? [])
        let oomScoreAdj = hc.oomScoreAdj ?? 0
        guard (-1000...1000).contains(oomScoreAdj) else {
            throw EngineError(.invalidArgument, "Invalid value \(oomScoreAdj), range for oom score adj is [-1000, 1000]")
        }
        process.oomScoreAdj = oomScoreAdj

        // Security options.
        var seccompMode: SeccompChoice = privileged ? .none : .berthDefault
        var maskedPaths = privileged ? nil : (hc.maskedPaths ?? defaultMaskedPaths)
        var readonlyPaths = privileged ? nil : (hc.readonlyPaths ?? defaultReadonlyPaths)
        for opt in hc.securityOpt ?? [] {
            let (key, value) = splitSecurityOpt(opt)
            switch key {
            case "no-new-privileges":
                guard let flag = value.isEmpty ? true : Bool(value) else {
                    throw EngineError(.invalidArgument, "invalid --security-opt: \"\(opt)\"")
                }
                process.noNewPrivileges = flag
            case "seccomp":
                if value == "unconfined" {
                    seccompMode = .none
                } else if value.isEmpty {
                    throw EngineError(.invalidArgument, "invalid --security-opt: \"\(opt)\"")
                } else if !privileged {
                    seccompMode = .profile(try DockerSeccompProfile.decode(value))
                }
            case "apparmor", "label":
                warnings.append("security option \"\(opt)\" is not supported by Berth and was ignored")
            case "systempaths":
                guard value == "unconfined" else {
                    throw EngineError(.invalidArgument, "invalid --security-opt: \"\(opt)\"")
                }
                maskedPaths = nil; readonlyPaths = nil
            default:
                throw EngineError(.invalidArgument, "invalid --security-opt: \"\(opt)\"")
            }
        }
        let seccomp: Seccomp? = switch seccompMode {
        case .none: nil
        case .berthDefault: BerthDefaultSeccomp.profile(capabilities: Set(caps))
        case .profile(let p): try p.ociProfile(capabilities: Set(caps))
        }

        // Init process.
        var initMount: [Mount] = []
        if hc.`init` == true {
            guard let initPath else {
                throw EngineError(.invalidState, "no init binary configured for --init")
            }
            args = [initDestination, "--"] + args
            process.args = args
            initMount = [Mount(destination: initDestination, type: "bind", source: initPath,
                               options: ["bind", "ro", "rprivate"])]
        }

        // Mounts.
        var userMounts = try parseBinds(hc.binds ?? [], lookups: lookups)
        userMounts += try parseMounts(hc.mounts ?? [], lookups: lookups)
        userMounts += try parseTmpfs(hc.tmpfs ?? [:])
        var seen = Set<String>()
        for m in userMounts {
            if !seen.insert(m.destination).inserted {
                throw EngineError(.invalidArgument, "Duplicate mount point: \(m.destination)")
            }
        }
        var defaults = defaultMounts(shmSize: hc.shmSize ?? 0, privileged: privileged)
        for (file, dest) in [(hostsFile, "/etc/hosts"), (resolvConf, "/etc/resolv.conf"), (hostnameFile, "/etc/hostname")] {
            if let file { defaults.append(Mount(destination: dest, type: "bind", source: file, options: ["rbind", "rprivate"])) }
        }
        defaults.removeAll { d in seen.contains { d.destination == $0 || d.destination.hasPrefix($0 + "/") } }
        // Parents before children, as Docker sorts user mounts by depth.
        let sortedUser = userMounts.enumerated().sorted {
            let a = depth($0.element.destination), b = depth($1.element.destination)
            return a != b ? a < b : $0.offset < $1.offset
        }.map(\.element)
        let mounts = defaults + sortedUser + initMount

        // Linux.
        var linux = Linux(namespaces: namespaces)
        linux.resources = try resources(hc)
        let (devices, deviceRules) = try devicesAndRules(hc, privileged: privileged, lookups: lookups)
        linux.devices = devices.isEmpty ? nil : devices
        linux.resources?.devices = deviceRules
        linux.sysctl = try sysctls(hc.sysctls ?? [:], hostNetwork: hostNetwork, hostIPC: hostIPC)
        linux.maskedPaths = maskedPaths
        linux.readonlyPaths = readonlyPaths
        linux.seccomp = seccomp
        if let parent = nonEmpty(hc.cgroupParent) {
            linux.cgroupsPath = (parent.hasSuffix("/") ? parent : parent + "/") + containerID
        } else {
            linux.cgroupsPath = "/berth/" + containerID
        }

        let spec = Spec(process: process, root: Root(path: rootfs, readonly: hc.readonlyRootfs ?? false),
                        hostname: hostname, domainname: hostUTS ? nil : nonEmpty(config.domainname),
                        mounts: mounts, linux: linux)
        return Result(spec: spec, warnings: warnings)
    }

    private enum SeccompChoice { case none, berthDefault, profile(DockerSeccompProfile) }

    // MARK: Process

    /// Docker's merge of the create config with the image config (daemon/commit.go `merge`),
    /// then entrypoint + cmd; an entrypoint of `[""]` means "no entrypoint".
    static func commandLine(config: DockerContainerConfig, image: ContainerConfig) throws(EngineError) -> [String] {
        var entrypoint = config.entrypoint
        var cmd = config.cmd ?? []
        if (entrypoint ?? []).isEmpty {
            if cmd.isEmpty { cmd = image.cmd ?? [] }
            if entrypoint == nil { entrypoint = image.entrypoint }
        }
        let ep = (entrypoint ?? []) == [""] ? [] : (entrypoint ?? [])
        let args = ep + cmd
        guard !args.isEmpty else { throw EngineError(.invalidArgument, "no command specified") }
        return args
    }

    static func environment(config: DockerContainerConfig, image: ContainerConfig, hostname: String) -> [String] {
        var env = ["PATH=" + defaultPath, "HOSTNAME=" + hostname]
        if config.tty == true { env.append("TERM=xterm") }
        for entry in (image.env ?? []) + (config.env ?? []) {
            replaceOrAppend(&env, entry)
        }
        return env
    }

    static func replaceOrAppend(_ env: inout [String], _ entry: String) {
        let key = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)[0]
        if let i = env.firstIndex(where: { $0.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)[0] == key }) {
            env[i] = entry
        } else {
            env.append(entry)
        }
    }

    static func user(_ spec: String, groupAdd: [String], lookups: Lookups) throws(EngineError) -> User {
        var result = User()
        if !spec.isEmpty {
            let parts = spec.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let name = parts[0]
            let group = parts.count > 1 ? parts[1] : nil
            if let uid = UInt32(name) {
                result.uid = uid
                if group == nil, let found = lookups.user(name) {
                    result.gid = found.gid
                    result.additionalGids = found.additionalGids.isEmpty ? nil : found.additionalGids
                }
            } else if let found = lookups.user(name) {
                result.uid = found.uid
                result.gid = found.gid
                if group == nil, !found.additionalGids.isEmpty { result.additionalGids = found.additionalGids }
            } else {
                throw EngineError(.invalidArgument, "unable to find user \(name): no matching entries in passwd file")
            }
            if let group {
                result.gid = try gid(group, lookups: lookups)
            }
        }
        var extra = result.additionalGids ?? []
        for g in groupAdd {
            let id = try gid(g, lookups: lookups)
            if !extra.contains(id) { extra.append(id) }
        }
        result.additionalGids = extra.isEmpty ? nil : extra
        return result
    }

    private static func gid(_ group: String, lookups: Lookups) throws(EngineError) -> UInt32 {
        if let id = UInt32(group) { return id }
        if let id = lookups.group(group) { return id }
        throw EngineError(.invalidArgument, "unable to find group \(group): no matching entries in group file")
    }

    static func fullCapabilityName(_ name: String) -> String {
        let upper = name.uppercased()
        return upper.hasPrefix("CAP_") ? upper : "CAP_" + upper
    }

    private static func normalizeCapabilities(_ names: [String], field: String) throws(EngineError) -> [String] {
        var out: [String] = []
        for name in names {
            if name.uppercased() == "ALL" { out.append("ALL"); continue }
            let full = fullCapabilityName(name)
            guard Capability.names.contains(full) else {
                throw EngineError(.invalidArgument, "invalid \(field): unknown capability: \"\(full)\"")
            }
            out.append(full)
        }
        return out
    }

    /// Docker's TweakCapabilities (oci/caps): ALL in CapAdd wins, then ALL in CapDrop.
    static func capabilities(add: [String], drop: [String], privileged: Bool) throws(EngineError) -> [String] {
        let adds = try normalizeCapabilities(add, field: "CapAdd")
        let drops = try normalizeCapabilities(drop, field: "CapDrop")
        if privileged { return allCapabilities }
        var caps: [String]
        if adds.contains("ALL") {
            caps = allCapabilities.filter { !drops.contains($0) }
        } else if drops.contains("ALL") {
            caps = adds
        } else {
            caps = defaultCapabilities.filter { !drops.contains($0) } + adds
        }
        var seen = Set<String>()
        return caps.filter { seen.insert($0).inserted }
    }

    static let rlimitNames: Set<String> = [
        "as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
        "rss", "rtprio", "rttime", "sigpending", "stack",
    ]

    static func rlimits(_ ulimits: [DockerHostConfig.Ulimit]) throws(EngineError) -> [Rlimit]? {
        var out: [Rlimit] = []
        for u in ulimits {
            let name = u.name.lowercased()
            guard rlimitNames.contains(name) else { throw EngineError(.invalidArgument, "invalid ulimit type: \(u.name)") }
            if u.hard >= 0, u.soft > u.hard || u.soft < 0 {
                throw EngineError(.invalidArgument, "ulimit soft limit must be less than or equal to hard limit: \(u.soft) > \(u.hard)")
            }
            func value(_ v: Int64) -> UInt64 { v < 0 ? UInt64.max : UInt64(v) }
            out.append(Rlimit(type: "RLIMIT_" + name.uppercased(), hard: value(u.hard), soft: value(u.soft)))
        }
        return out.isEmpty ? nil : out
    }

    private static func splitSecurityOpt(_ opt: String) -> (String, String) {
        // Docker accepts `key=value` and the legacy `key:value`.
        let eq = opt.firstIndex(of: "="), colon = opt.firstIndex(of: ":")
        let sep: String.Index? = switch (eq, colon) {
        case let (e?, c?): min(e, c)
        case let (e?, nil): e
        case let (nil, c?): c
        default: nil
        }
        guard let sep else { return (opt, "") }
        return (String(opt[..<sep]), String(opt[opt.index(after: sep)...]))
    }

    // MARK: Namespaces

    static func buildNamespaces(_ hc: DockerHostConfig, lookups: Lookups) throws(EngineError) -> [Namespace] {
        func mode(_ value: String?, _ type: String, hostAllowed: Bool = true) throws(EngineError) -> Namespace? {
            let v = value ?? ""
            if v == "host" && hostAllowed { return nil }
            if v.hasPrefix("container:") {
                let ref = String(v.dropFirst("container:".count))
                guard !ref.isEmpty else { throw EngineError(.invalidArgument, "invalid \(type) mode: \(v)") }
                return Namespace(type: type, path: try lookups.namespacePath(ref, type))
            }
            return Namespace(type: type)
        }
        var out: [Namespace] = []
        if let ns = try mode(hc.pidMode, "pid") { out.append(ns) }
        let ipc = hc.ipcMode ?? ""
        guard ["", "private", "shareable", "none", "host"].contains(ipc) || ipc.hasPrefix("container:") else {
            throw EngineError(.invalidArgument, "invalid IPC mode: \(ipc)")
        }
        if let ns = try mode(hc.ipcMode, "ipc") { out.append(ns) }
        if let ns = try mode(hc.utsMode, "uts") { out.append(ns) }
        out.append(Namespace(type: "mount"))
        if let ns = try mode(hc.networkMode, "network") { out.append(ns) }
        switch hc.cgroupnsMode ?? "" {
        case "", "private": out.append(Namespace(type: "cgroup"))
        case "host": break
        case let other: throw EngineError(.invalidArgument, "invalid cgroup namespace mode: \(other)")
        }
        return out
    }

    // MARK: Mounts

    private static let propagationModes: Set<String> = ["shared", "rshared", "slave", "rslave", "private", "rprivate"]

    static func defaultMounts(shmSize: Int64, privileged: Bool) -> [Mount] {
        let shm = shmSize > 0 ? shmSize : defaultShmSize
        return [
            Mount(destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"]),
            Mount(destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"]),
            Mount(destination: "/dev/pts", type: "devpts", source: "devpts",
                  options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
            Mount(destination: "/sys", type: "sysfs", source: "sysfs",
                  options: ["nosuid", "noexec", "nodev", privileged ? "rw" : "ro"]),
            Mount(destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup",
                  options: ["nosuid", "noexec", "nodev", "relatime", privileged ? "rw" : "ro"]),
            Mount(destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"]),
            Mount(destination: "/dev/shm", type: "tmpfs", source: "shm",
                  options: ["nosuid", "noexec", "nodev", "mode=1777", "size=\(shm)"]),
        ]
    }

    /// One mount asked for through `Binds`, `Mounts` or `Tmpfs`, validated but not resolved: a
    /// volume is named by `source` (empty for an anonymous one) and a bind's host path has not
    /// been looked at. The engine resolves these; `ociMount` turns a resolved one into a mount.
    public struct MountRequest: Sendable, Equatable {
        public enum Kind: String, Sendable { case bind, volume, tmpfs }
        public var kind: Kind
        public var source: String
        public var destination: String
        public var readOnly = false
        /// The `-v` mode text (`ro,z`), Docker's `Mode` in inspect.
        public var mode = ""
        /// Empty for the default, rprivate.
        public var propagation = ""
        public var recursive = true
        /// Leave a new volume empty instead of filling it from the image.
        public var noCopy = false
        public var subpath = ""
        /// For a volume this mount creates: its driver, driver options and labels.
        public var volumeDriver = ""
        public var volumeOptions: [String: String] = [:]
        public var volumeLabels: [String: String] = [:]
        /// OCI options of a tmpfs.
        public var tmpfsOptions: [String] = []
        /// From `Binds` (`-v`), where a missing host directory is created rather than refused.
        public var fromBinds = false

        public init(kind: Kind, source: String, destination: String, readOnly: Bool = false) {
            self.kind = kind; self.source = source; self.destination = destination; self.readOnly = readOnly
        }
    }

    static func parseBinds(_ binds: [String], lookups: Lookups) throws(EngineError) -> [Mount] {
        try bindRequests(binds).map { r throws(EngineError) in try ociMount(r, lookups: lookups) }
    }

    static func parseMounts(_ mounts: [DockerHostConfig.MountPoint], lookups: Lookups) throws(EngineError) -> [Mount] {
        try mountRequests(mounts).map { r throws(EngineError) in try ociMount(r, lookups: lookups) }
    }

    static func parseTmpfs(_ tmpfs: [String: String]) throws(EngineError) -> [Mount] {
        try tmpfsRequests(tmpfs).map { r throws(EngineError) in try ociMount(r, lookups: Lookups()) }
    }

    /// A resolved request as the runtime mounts it: volumes are bind mounts of their directory.
    static func ociMount(_ r: MountRequest, lookups: Lookups) throws(EngineError) -> Mount {
        if r.kind == .tmpfs {
            return Mount(destination: r.destination, type: "tmpfs", source: "tmpfs", options: r.tmpfsOptions)
        }
        var source = r.source
        if r.kind == .volume {
            guard !r.source.isEmpty else {
                throw EngineError(.invalidState, "the anonymous volume at \(r.destination) was given no name")
            }
            source = r.subpath.isEmpty ? try lookups.volume(r.source) : lookups.volumeSubpath(r.destination)
        }
        var options = [r.recursive ? "rbind" : "bind", r.propagation.isEmpty ? "rprivate" : r.propagation]
        if r.readOnly { options.append("ro") }
        return Mount(destination: r.destination, type: "bind", source: source, options: options)
    }

    /// `-v [src:]dst[:opts]` (Docker's linux parser): an absolute source is a host path, a
    /// source without "/" a named volume, no source an anonymous volume.
    public static func bindRequests(_ binds: [String]) throws(EngineError) -> [MountRequest] {
        var out: [MountRequest] = []
        for bind in binds {
            let parts = bind.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard (1...3).contains(parts.count) else {
                throw EngineError(.invalidArgument, "invalid volume specification: '\(bind)'")
            }
            if parts.count == 1 {
                var r = MountRequest(kind: .volume, source: "", destination: try cleanDestination(parts[0]))
                r.fromBinds = true
                out.append(r)
                continue
            }
            let src = parts[0]
            let dst = try cleanDestination(parts[1])
            guard !src.isEmpty else {
                throw EngineError(.invalidArgument, "invalid volume specification: '\(bind)': missing source")
            }
            var r = MountRequest(kind: src.hasPrefix("/") ? .bind : .volume, source: src, destination: dst)
            r.fromBinds = true
            if r.kind == .bind {
                r.source = FileSystem.clean(src)
            } else if src.contains("/") {
                throw EngineError(.invalidArgument, "invalid volume specification: '\(bind)': source must be an absolute path or a volume name")
            } else if !isValidVolumeName(src) {
                throw EngineError(.invalidArgument, "\"\(src)\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path")
            }
            if parts.count == 3 {
                r.mode = parts[2]
                for opt in parts[2].split(separator: ",").map(String.init) {
                    switch opt {
                    case "ro": r.readOnly = true
                    case "rw": r.readOnly = false
                    case "z", "Z": break  // SELinux relabelling does not apply here.
                    case "nocopy": r.noCopy = true
                    case _ where propagationModes.contains(opt): r.propagation = opt
                    default: throw EngineError(.invalidArgument, "invalid mode: \(opt)")
                    }
                }
            }
            // Docker's defaults as inspect shows them: `z` for named volumes, rprivate for binds.
            if r.kind == .volume && r.mode.isEmpty { r.mode = "z" }
            if r.kind == .bind && r.propagation.isEmpty { r.propagation = "rprivate" }
            out.append(r)
        }
        return out
    }

    /// `HostConfig.Mounts` (`--mount`), with Docker's validateMountConfig errors.
    public static func mountRequests(_ mounts: [DockerHostConfig.MountPoint]) throws(EngineError) -> [MountRequest] {
        var out: [MountRequest] = []
        for m in mounts {
            let type = m.type ?? ""
            func invalid(_ why: String) -> EngineError {
                EngineError(.invalidArgument, "invalid mount config for type \"\(type)\": \(why)")
            }
            func refuse(_ field: String, _ present: Bool) throws(EngineError) {
                if present { throw invalid("field \(field) must not be specified") }
            }
            guard let target = nonEmpty(m.target) else { throw invalid("field Target must not be empty") }
            var r = MountRequest(kind: .bind, source: m.source ?? "", destination: try cleanDestination(target),
                                 readOnly: m.readOnly ?? false)
            switch type {
            case "bind":
                try refuse("VolumeOptions", m.volumeOptions != nil)
                try refuse("TmpfsOptions", m.tmpfsOptions != nil)
                guard !r.source.isEmpty else { throw invalid("field Source must not be empty") }
                guard r.source.hasPrefix("/") else {
                    throw invalid("invalid mount path: '\(r.source)' mount path must be absolute")
                }
                r.source = FileSystem.clean(r.source)
                r.recursive = !(m.bindOptions?.nonRecursive ?? false)
                r.propagation = nonEmpty(m.bindOptions?.propagation) ?? "rprivate"
                guard propagationModes.contains(r.propagation) else {
                    throw invalid("invalid propagation mode: \(r.propagation)")
                }
            case "volume":
                r.kind = .volume
                try refuse("BindOptions", m.bindOptions != nil)
                try refuse("TmpfsOptions", m.tmpfsOptions != nil)
                if !r.source.isEmpty && !isValidVolumeName(r.source) {
                    throw invalid("\"\(r.source)\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed")
                }
                let options = m.volumeOptions
                r.noCopy = options?.noCopy ?? false
                r.volumeLabels = options?.labels ?? [:]
                r.volumeDriver = options?.driverConfig?.name ?? ""
                r.volumeOptions = options?.driverConfig?.options ?? [:]
                r.subpath = options?.subpath ?? ""
                if !r.subpath.isEmpty {
                    guard !r.source.isEmpty else { throw invalid("cannot use subpath with an anonymous volume") }
                    guard !r.subpath.hasPrefix("/"), !r.subpath.split(separator: "/").contains("..") else {
                        throw invalid("subpath must be a relative path within the volume")
                    }
                }
            case "tmpfs":
                r.kind = .tmpfs
                try refuse("Source", !r.source.isEmpty)
                try refuse("BindOptions", m.bindOptions != nil)
                try refuse("VolumeOptions", m.volumeOptions != nil)
                var options = ["nosuid", "nodev", "noexec"]
                if r.readOnly { options.append("ro") }
                if let size = m.tmpfsOptions?.sizeBytes {
                    guard size >= 0 else { throw invalid("invalid tmpfs size: \(size)") }
                    if size > 0 { options.append("size=\(size)") }
                }
                if let mode = m.tmpfsOptions?.mode, mode != 0 { options.append("mode=" + String(mode & 0o7777, radix: 8)) }
                r.tmpfsOptions = options
            default:
                throw EngineError(.invalidArgument, "mount type unknown or not supported: \"\(type)\"")
            }
            out.append(r)
        }
        return out
    }

    /// `--tmpfs /run:size=1m,exec`: Docker's defaults noexec,nosuid,nodev with the user's
    /// options overriding their opposites.
    public static func tmpfsRequests(_ tmpfs: [String: String]) throws(EngineError) -> [MountRequest] {
        let opposites = ["exec": "noexec", "noexec": "exec", "suid": "nosuid", "nosuid": "suid",
                         "dev": "nodev", "nodev": "dev", "ro": "rw", "rw": "ro"]
        var out: [MountRequest] = []
        for (path, opts) in tmpfs.sorted(by: { $0.key < $1.key }) {
            var r = MountRequest(kind: .tmpfs, source: "", destination: try cleanDestination(path))
            var options = ["noexec", "nosuid", "nodev"]
            for opt in opts.split(separator: ",").map(String.init) where !opt.isEmpty {
                if let opposite = opposites[opt] { options.removeAll { $0 == opposite || $0 == opt } }
                if let eq = opt.firstIndex(of: "=") {
                    let key = opt[..<eq]
                    options.removeAll { $0.hasPrefix(key + "=") }
                }
                options.append(opt)
            }
            r.tmpfsOptions = options
            r.readOnly = options.contains("ro")
            out.append(r)
        }
        return out
    }

    private static func isValidVolumeName(_ name: String) -> Bool {
        // Docker's local volume names: [a-zA-Z0-9][a-zA-Z0-9_.-]+
        guard let first = name.unicodeScalars.first, name.unicodeScalars.count >= 2 else { return false }
        func alnum(_ c: Unicode.Scalar) -> Bool { c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c)) }
        return alnum(first) && name.unicodeScalars.dropFirst().allSatisfy { alnum($0) || "_.-".unicodeScalars.contains($0) }
    }

    static func cleanDestination(_ path: String) throws(EngineError) -> String {
        guard path.hasPrefix("/") else {
            throw EngineError(.invalidArgument, "invalid mount config: invalid mount path: '\(path)' mount path must be absolute")
        }
        let clean = FileSystem.clean(path)
        guard clean != "/" else {
            throw EngineError(.invalidArgument, "invalid specification: destination can't be '/'")
        }
        return clean
    }

    private static func depth(_ path: String) -> Int { path.split(separator: "/").count }

    // MARK: Resources

    static func resources(_ hc: DockerHostConfig) throws(EngineError) -> Resources {
        var r = Resources()
        var mem = Resources.Memory()
        let memory = hc.memory ?? 0
        if memory > 0 {
            guard memory >= 6 * 1024 * 1024 else {
                throw EngineError(.invalidArgument, "Minimum memory limit allowed is 6MB")
            }
            mem.limit = memory
        }
        let swap = hc.memorySwap ?? 0
        if swap > 0 || swap == -1 {
            guard memory > 0 else {
                throw EngineError(.invalidArgument, "You should always set the Memory limit when using Memoryswap limit, see usage")
            }
            if swap > 0 && swap < memory {
                throw EngineError(.invalidArgument, "Minimum memoryswap limit should be larger than memory limit, see usage")
            }
            mem.swap = swap
        } else if memory > 0 {
            mem.swap = memory * 2
        }
        if let res = hc.memoryReservation, res > 0 {
            if memory > 0 && res > memory {
                throw EngineError(.invalidArgument, "Minimum memory limit can not be less than memory reservation limit, see usage")
            }
            mem.reservation = res
        }
        if let s = hc.memorySwappiness, s != -1 {
            guard (0...100).contains(s) else {
                throw EngineError(.invalidArgument, "Invalid value: \(s), valid memory swappiness range is 0-100")
            }
            mem.swappiness = UInt64(s)
        }
        if hc.oomKillDisable == true { mem.disableOOMKiller = true }
        if mem != Resources.Memory() { r.memory = mem }

        var cpu = Resources.CPU()
        let nano = hc.nanoCpus ?? 0
        if nano > 0 && ((hc.cpuQuota ?? 0) > 0 || (hc.cpuPeriod ?? 0) > 0) {
            throw EngineError(.invalidArgument, "Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set")
        }
        if nano < 0 { throw EngineError(.invalidArgument, "Range of CPUs is from 0.01 to the number of CPUs available") }
        if nano > 0 {
            cpu.period = 100_000
            cpu.quota = nano * 100_000 / 1_000_000_000
        }
        if let q = hc.cpuQuota, q > 0 { cpu.quota = q }
        if let p = hc.cpuPeriod, p > 0 { cpu.period = UInt64(p) }
        if let s = hc.cpuShares, s > 0 { cpu.shares = UInt64(s) }
        if let v = hc.cpuRealtimePeriod, v > 0 { cpu.realtimePeriod = UInt64(v) }
        if let v = hc.cpuRealtimeRuntime, v > 0 { cpu.realtimeRuntime = v }
        cpu.cpus = nonEmpty(hc.cpusetCpus)
        cpu.mems = nonEmpty(hc.cpusetMems)
        if cpu != Resources.CPU() { r.cpu = cpu }

        if let p = hc.pidsLimit, p > 0 { r.pids = Resources.Pids(limit: p) }
        if let w = hc.blkioWeight, w != 0 {
            guard (10...1000).contains(w) else {
                throw EngineError(.invalidArgument, "Range of blkio weight is from 10 to 1000")
            }
            r.blockIO = Resources.BlockIO(weight: w)
        }
        return r
    }

    // MARK: Devices

    /// Docker's default device cgroup rules (oci/defaults): deny all, then the standard nodes.
    static let defaultDeviceRules: [Resources.DeviceCgroup] = {
        func allow(_ type: String, _ major: Int64?, _ minor: Int64?, _ access: String) -> Resources.DeviceCgroup {
            Resources.DeviceCgroup(allow: true, type: type, major: major, minor: minor, access: access)
        }
        return [
            Resources.DeviceCgroup(allow: false, access: "rwm"),
            allow("c", nil, nil, "m"), allow("b", nil, nil, "m"),
            allow("c", 1, 3, "rwm"), allow("c", 1, 5, "rwm"), allow("c", 1, 7, "rwm"),
            allow("c", 1, 8, "rwm"), allow("c", 1, 9, "rwm"),
            allow("c", 5, 0, "rwm"), allow("c", 5, 1, "rwm"), allow("c", 5, 2, "rwm"),
            allow("c", 136, nil, "rwm"), allow("c", 10, 200, "rwm"),
        ]
    }()

    static func devicesAndRules(_ hc: DockerHostConfig, privileged: Bool, lookups: Lookups)
        throws(EngineError) -> ([Device], [Resources.DeviceCgroup]) {
        if privileged { return ([], [Resources.DeviceCgroup(allow: true, access: "rwm")]) }
        var devices: [Device] = []
        var rules = defaultDeviceRules
        for d in hc.devices ?? [] {
            guard let host = nonEmpty(d.pathOnHost) else {
                throw EngineError(.invalidArgument, "invalid device mapping: PathOnHost is empty")
            }
            let path = nonEmpty(d.pathInContainer) ?? host
            let access = nonEmpty(d.cgroupPermissions) ?? "rwm"
            guard isValidAccess(access) else { throw EngineError(.invalidArgument, "invalid device mode: \(access)") }
            guard let info = lookups.device(host) else {
                throw EngineError(.notFound, "error gathering device information while adding custom device \"\(host)\": no such file or directory")
            }
            devices.append(Device(type: info.type, path: path, major: info.major, minor: info.minor, fileMode: info.fileMode,
                                  uid: 0, gid: 0))
            rules.append(Resources.DeviceCgroup(allow: true, type: info.type, major: info.major, minor: info.minor, access: access))
        }
        for rule in hc.deviceCgroupRules ?? [] {
            rules.append(try parseDeviceRule(rule))
        }
        return (devices, rules)
    }

    private static func isValidAccess(_ s: String) -> Bool {
        !s.isEmpty && s.count <= 3 && s.allSatisfy { "rwm".contains($0) } && Set(s).count == s.count
    }

    /// `c 1:3 rwm`, `a *:* rwm`: type, major:minor (or *), access.
    static func parseDeviceRule(_ rule: String) throws(EngineError) -> Resources.DeviceCgroup {
        let invalid = EngineError(.invalidArgument, "invalid device cgroup format '\(rule)'")
        let fields = rule.split(separator: " ").map(String.init)
        guard fields.count == 3, ["a", "b", "c"].contains(fields[0]), isValidAccess(fields[2]) else { throw invalid }
        let numbers = fields[1].split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard numbers.count == 2 else { throw invalid }
        func number(_ s: String) throws(EngineError) -> Int64? {
            if s == "*" { return nil }
            guard let n = Int64(s), n >= 0 else { throw invalid }
            return n
        }
        return Resources.DeviceCgroup(allow: true, type: fields[0], major: try number(numbers[0]),
                                      minor: try number(numbers[1]), access: fields[2])
    }

    // MARK: Sysctls

    private static let ipcSysctls: Set<String> = [
        "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
        "kernel.shmmni", "kernel.shm_rmid_forced",
    ]

    /// Only sysctls namespaced by a namespace the container owns are allowed (Docker's
    /// ValidateSysctl and runc's check).
    static func sysctls(_ values: [String: String], hostNetwork: Bool, hostIPC: Bool) throws(EngineError) -> [String: String]? {
        for key in values.keys.sorted() {
            if ipcSysctls.contains(key) || key.hasPrefix("fs.mqueue.") {
                if hostIPC { throw EngineError(.invalidArgument, "sysctl '\(key)' is not allowed in host IPC namespace") }
            } else if key.hasPrefix("net.") {
                if hostNetwork { throw EngineError(.invalidArgument, "sysctl '\(key)' is not allowed in host network namespace") }
            } else {
                throw EngineError(.invalidArgument, "sysctl '\(key)' is not allowed")
            }
        }
        return values.isEmpty ? nil : values
    }

    private static func nonEmpty(_ s: String?) -> String? {
        guard let s, !s.isEmpty else { return nil }
        return s
    }
}
