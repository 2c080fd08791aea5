import BerthCgroups
import BerthOCI
import BerthOS
import BerthSeccomp
import CBerthSys
import Glibc

/// One hierarchy as a container sees it under its cgroup mount: a subdirectory name and
/// the host directory of the container's own cgroup there.
struct CgroupView {
    var name: String          // "memory", "cpu,cpuacct", "unified", or "" for a pure v2 host
    var hostPath: String      // /sys/fs/cgroup/memory/berth/ID
    var aliases: [String]     // symlinks to name, e.g. "cpu" and "cpuacct" for "cpu,cpuacct"
}

/// A validated config.json for a new container: everything the child needs, resolved.
/// Building it has no side effects, so bad input fails before anything is created.
struct ContainerPlan {
    var spec: Spec
    var bundle: String
    var rootfs: String
    var process: ProcessSettings
    var namespaces: NamespacePlan
    var steps: [Step] = []
    var devices: [Device] = []
    var maskedPaths: [String]
    var readonlyPaths: [String]
    var sysctls: [(String, String)]
    var uidMap: String?
    var gidMap: String?
    var timeOffsets: String?
    var seccomp: SeccompFilter?
    var rootfsPropagation: UInt = 0

    struct Step {
        var kind: Int32 = Int32(BERTH_MOUNT)
        var source: String?
        var destination: String
        var fstype: String?
        var flags: UInt = 0
        var propagation: UInt = 0
        var data: String?
        var isBind = false
    }

    struct Device {
        var path: String
        var type: CChar
        var major: UInt32, minor: UInt32
        var mode: UInt32
        var uid: UInt32, gid: UInt32
    }

    static let defaultDevices: [(String, UInt32, UInt32)] = [
        ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
        ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0),
    ]

    init(spec: Spec, bundle: String, cgroupViews: [CgroupView]) throws(RuntimeError) {
        self.spec = spec
        self.bundle = bundle
        guard spec.ociVersion.hasPrefix("1.") else {
            throw .invalid("ociVersion", "unsupported version \"\(spec.ociVersion)\" (Berth implements 1.x)")
        }
        guard let root = spec.root, !root.path.isEmpty else { throw .invalid("root.path", "is required") }
        rootfs = FileSystem.absolute(root.path.hasPrefix("/") ? root.path : bundle + "/" + root.path)
        guard FileSystem.isDirectory(rootfs) else {
            throw .invalid("root.path", "rootfs \(rootfs) does not exist or is not a directory")
        }
        guard let p = spec.process else { throw .invalid("process", "is required to create a container") }
        process = try ProcessSettings(p)
        let linux = spec.linux ?? Linux()
        namespaces = try NamespacePlan(linux.namespaces)
        guard namespaces.has(.mount) else {
            throw .invalid("linux.namespaces", "a mount namespace is required (the container's root would replace the host's)")
        }
        // A UTS namespace of the container's own, new or joined by path (config.md hostname).
        if spec.hostname != nil && !namespaces.has(.uts) {
            throw .invalid("hostname", "needs a private uts namespace")
        }
        if spec.domainname != nil && !namespaces.has(.uts) {
            throw .invalid("domainname", "needs a private uts namespace")
        }

        if namespaces.create.contains(.user) {
            guard let u = linux.uidMappings, !u.isEmpty else { throw .invalid("linux.uidMappings", "required with a new user namespace") }
            guard let g = linux.gidMappings, !g.isEmpty else { throw .invalid("linux.gidMappings", "required with a new user namespace") }
            uidMap = u.map { "\($0.containerID) \($0.hostID) \($0.size)\n" }.joined()
            gidMap = g.map { "\($0.containerID) \($0.hostID) \($0.size)\n" }.joined()
        } else if !(linux.uidMappings ?? []).isEmpty || !(linux.gidMappings ?? []).isEmpty {
            throw .invalid("linux.uidMappings", "mappings need a new user namespace")
        }
        if let offsets = linux.timeOffsets, !offsets.isEmpty {
            guard namespaces.create.contains(.time) else { throw .invalid("linux.timeOffsets", "needs a new time namespace") }
            var lines = ""
            for (clock, o) in offsets.sorted(by: { $0.key < $1.key }) {
                guard clock == "monotonic" || clock == "boottime" else {
                    throw .invalid("linux.timeOffsets", "unknown clock \"\(clock)\" (monotonic or boottime)")
                }
                lines += "\(clock) \(o.secs ?? 0) \(o.nanosecs ?? 0)\n"
            }
            timeOffsets = lines
        }
        if let prop = linux.rootfsPropagation, !prop.isEmpty {
            let o = try MountOptions([prop], field: "linux.rootfsPropagation")
            guard o.propagation != 0, o.flags == 0, o.data.isEmpty else {
                throw .invalid("linux.rootfsPropagation", "unknown propagation \"\(prop)\"")
            }
            rootfsPropagation = o.propagation
        }
        maskedPaths = linux.maskedPaths ?? []
        readonlyPaths = linux.readonlyPaths ?? []
        for (field, list) in [("linux.maskedPaths", maskedPaths), ("linux.readonlyPaths", readonlyPaths)] {
            if let bad = list.first(where: { !$0.hasPrefix("/") }) {
                throw .invalid(field, "\"\(bad)\" is not an absolute path")
            }
        }
        sysctls = (linux.sysctl ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        for (k, _) in sysctls where k.isEmpty || k.contains("/") || k.contains("..") {
            throw .invalid("linux.sysctl", "invalid key \"\(k)\"")
        }
        if let s = linux.seccomp {
            do { seccomp = try SeccompCompiler.compile(s) } catch { throw .invalid("linux.seccomp", error.description) }
        }
        try planMounts(spec.mounts ?? [], cgroupViews: cgroupViews)
        try planDevices(linux.devices ?? [])
    }

    private mutating func planMounts(_ mounts: [Mount], cgroupViews: [CgroupView]) throws(RuntimeError) {
        for (i, m) in mounts.enumerated() {
            let field = "mounts[\(i)]"
            guard m.destination.hasPrefix("/") else {
                throw .invalid("\(field).destination", "must be an absolute path, got \"\(m.destination)\"")
            }
            if m.destination.split(separator: "/").contains("..") {
                throw .invalid("\(field).destination", "must not contain \"..\"")
            }
            let o = try MountOptions(m.options ?? [], field: "\(field).options")
            let type = m.type ?? (o.isBind ? "bind" : "")
            let isBind = o.isBind || type == "bind"
            if isBind {
                guard var source = m.source, !source.isEmpty else { throw .invalid("\(field).source", "a bind mount needs a source") }
                if !source.hasPrefix("/") { source = bundle + "/" + source }
                guard FileSystem.exists(source) else {
                    throw .invalid("\(field).source", "bind source \(source) does not exist")
                }
                steps.append(Step(source: source, destination: m.destination, fstype: nil,
                                  flags: o.flags | UInt(MS_BIND), propagation: o.propagation, isBind: true))
            } else if type == "cgroup" || type == "cgroup2" {
                try planCgroupMount(m, options: o, views: cgroupViews)
            } else {
                guard !type.isEmpty else { throw .invalid("\(field).type", "is required for a non-bind mount") }
                steps.append(Step(source: m.source ?? type, destination: m.destination, fstype: type,
                                  flags: o.flags, propagation: o.propagation,
                                  data: o.data.isEmpty ? nil : o.data.joined(separator: ",")))
            }
        }
        // /dev conveniences that programs expect (runtime-spec "Default Devices" and runc's links).
        if !devIsHostBind {
            let links = [("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
                         ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr")]
            for (target, link) in links {
                steps.append(Step(kind: Int32(BERTH_SYMLINK), source: target, destination: link))
            }
            if steps.contains(where: { $0.fstype == "devpts" && $0.destination == "/dev/pts" }) {
                steps.append(Step(kind: Int32(BERTH_SYMLINK), source: "pts/ptmx", destination: "/dev/ptmx"))
            }
        }
    }

    /// A bind of the host's /dev brings its own devices; otherwise Berth creates them.
    private var devIsHostBind: Bool {
        steps.contains { $0.isBind && $0.destination == "/dev" }
    }

    /// cgroup v1 has one hierarchy per controller: the container sees a tmpfs with each of its
    /// own cgroup directories bound in; cgroup v2 is a single mount of its own cgroup.
    private mutating func planCgroupMount(_ m: Mount, options o: MountOptions, views: [CgroupView]) throws(RuntimeError) {
        let flags = o.flags & ~UInt(MS_BIND | MS_REC)
        if views.count == 1, views[0].name.isEmpty {
            steps.append(Step(source: views[0].hostPath, destination: m.destination, flags: flags | UInt(MS_BIND | MS_REC),
                              propagation: o.propagation, isBind: true))
            return
        }
        steps.append(Step(source: "tmpfs", destination: m.destination, fstype: "tmpfs",
                          flags: UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC), data: "mode=755"))
        for v in views {
            let dest = m.destination + "/" + v.name
            steps.append(Step(source: v.hostPath, destination: dest, flags: flags | UInt(MS_BIND | MS_REC), isBind: true))
            for alias in v.aliases where alias != v.name {
                steps.append(Step(kind: Int32(BERTH_SYMLINK), source: v.name, destination: m.destination + "/" + alias))
            }
        }
        if flags & UInt(MS_RDONLY) != 0 {
            steps.append(Step(kind: Int32(BERTH_REMOUNT), destination: m.destination,
                              flags: UInt(MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC), data: "mode=755"))
        }
    }

    private mutating func planDevices(_ configured: [BerthOCI.Device]) throws(RuntimeError) {
        guard !devIsHostBind else { return }
        var paths = Set<String>()
        for (i, d) in configured.enumerated() {
            let field = "linux.devices[\(i)]"
            guard d.path.hasPrefix("/dev/") || d.path.hasPrefix("/") else {
                throw .invalid("\(field).path", "must be absolute, got \"\(d.path)\"")
            }
            let type: CChar
            switch d.type {
            case "c", "u": type = CChar(UInt8(ascii: "c"))
            case "b": type = CChar(UInt8(ascii: "b"))
            case "p": type = CChar(UInt8(ascii: "p"))
            default: throw .invalid("\(field).type", "unknown device type \"\(d.type)\" (c, u, b or p)")
            }
            if d.type != "p" && (d.major == nil || d.minor == nil) {
                throw .invalid(field, "major and minor are required for device type \"\(d.type)\"")
            }
            paths.insert(d.path)
            devices.append(Device(path: d.path, type: type, major: UInt32(d.major ?? 0), minor: UInt32(d.minor ?? 0),
                                  mode: (d.fileMode ?? 0o666) & 0o7777, uid: d.uid ?? 0, gid: d.gid ?? 0))
        }
        for (path, major, minor) in Self.defaultDevices where !paths.contains(path) {
            devices.append(Device(path: path, type: CChar(UInt8(ascii: "c")), major: major, minor: minor,
                                  mode: 0o666, uid: 0, gid: 0))
        }
    }

    /// The resources to apply: the spec's, with the device rules a container needs to work
    /// appended (as runc does): its default devices, the pty devices, and mknod of any node
    /// (a node still needs rw to be used). Devices in linux.devices are created, not allowed:
    /// access to them is what resources.devices says.
    var effectiveResources: Resources {
        var r = spec.linux?.resources ?? Resources()
        typealias Rule = Resources.DeviceCgroup
        var rules = r.devices ?? []
        rules.append(Rule(allow: true, type: "c", access: "m"))
        rules.append(Rule(allow: true, type: "b", access: "m"))
        for (_, major, minor) in Self.defaultDevices {
            rules.append(Rule(allow: true, type: "c", major: Int64(major), minor: Int64(minor), access: "rwm"))
        }
        rules.append(Rule(allow: true, type: "c", major: 5, minor: 1, access: "rwm"))   // /dev/console
        rules.append(Rule(allow: true, type: "c", major: 5, minor: 2, access: "rwm"))   // /dev/ptmx
        rules.append(Rule(allow: true, type: "c", major: 136, access: "rwm"))           // /dev/pts/*
        r.devices = rules
        return r
    }

    /// Fills the container part of a C plan; `arena` keeps the memory alive.
    func fill(_ plan: inout berth_plan, arena: Arena) {
        process.fill(&plan, arena: arena)
        plan.new_namespaces = namespaces.cloneFlags
        plan.new_time_namespace = namespaces.create.contains(.time) ? 1 : 0
        plan.time_offsets = arena.string(timeOffsets)
        plan.uid_map = arena.string(uidMap)
        plan.gid_map = arena.string(gidMap)
        plan.setup_rootfs = 1
        plan.rootfs = arena.string(rootfs)
        plan.readonly_rootfs = (spec.root?.readonly ?? false) ? 1 : 0
        plan.rootfs_propagation = rootfsPropagation
        plan.mounts = arena.array(steps.map { s in
            berth_mount(kind: s.kind, source: arena.string(s.source), destination: arena.string(s.destination),
                        fstype: arena.string(s.fstype), flags: s.flags, propagation: s.propagation,
                        data: arena.string(s.data), is_bind: s.isBind ? 1 : 0)
        })
        plan.n_mounts = Int32(steps.count)
        plan.devices = arena.array(devices.map { d in
            berth_device(path: arena.string(d.path), type: d.type, major: d.major, minor: d.minor,
                         mode: d.mode, uid: d.uid, gid: d.gid)
        })
        plan.n_devices = Int32(devices.count)
        // mknod is refused in a user namespace: bind the host's nodes instead.
        plan.bind_devices = namespaces.has(.user) ? 1 : 0
        plan.masked_paths = arena.constStrings(maskedPaths)
        plan.n_masked = Int32(maskedPaths.count)
        plan.readonly_paths = arena.constStrings(readonlyPaths)
        plan.n_readonly = Int32(readonlyPaths.count)
        plan.sysctls = arena.array(sysctls.map { berth_sysctl(key: arena.string($0.0), value: arena.string($0.1)) })
        plan.n_sysctls = Int32(sysctls.count)
        plan.hostname = arena.string(spec.hostname)
        plan.domainname = arena.string(spec.domainname)
        plan.setsid = 1
        if let seccomp {
            plan.seccomp_filter = arena.bytes(seccomp.instructions)
            plan.seccomp_len = seccomp.instructions.count
            plan.seccomp_flags = seccomp.flags
        }
    }
}

/// The hierarchies to show under a container's cgroup mount, from its cgroup's directories.
func cgroupViews(_ cgroup: any Cgroup) -> [CgroupView] {
    if cgroup.mode == .unified, let dir = cgroup.directories["unified"] {
        return [CgroupView(name: "", hostPath: dir, aliases: [])]
    }
    return cgroup.directories.sorted { $0.key < $1.key }.map { name, dir in
        // Named hierarchies appear by their name ("name=systemd" as "systemd").
        let shown = name.hasPrefix("name=") ? String(name.dropFirst(5)) : name
        let parts = shown.split(separator: ",").map(String.init)
        return CgroupView(name: shown, hostPath: dir, aliases: parts.count > 1 ? parts : [])
    }
}
