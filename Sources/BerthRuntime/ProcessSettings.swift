import BerthOCI
import CBerthSys
import BerthOS
import Glibc

/// A validated `process` section: every name resolved to a number, ready for the child.
struct ProcessSettings {
    var args: [String]
    var env: [String]
    var cwd: String
    var uid: UInt32
    var gid: UInt32
    var groups: [UInt32]
    var umask: UInt32?
    var terminal: Bool
    var rows: UInt16 = 0
    var cols: UInt16 = 0
    var caps: CapabilitySets?
    var rlimits: [(resource: Int32, soft: UInt64, hard: UInt64)]
    var noNewPrivileges: Bool
    var oomScoreAdj: Int?

    struct CapabilitySets {
        var bounding: UInt64 = 0, effective: UInt64 = 0, inheritable: UInt64 = 0, permitted: UInt64 = 0, ambient: UInt64 = 0
    }

    static let rlimitNames: [String: Int32] = [
        "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
        "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
        "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
        "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
    ]

    init(_ p: BerthOCI.Process, field: String = "process") throws(RuntimeError) {
        guard let args = p.args, !args.isEmpty, !args[0].isEmpty else {
            throw .invalid("\(field).args", "must name the program to run")
        }
        guard p.cwd.hasPrefix("/") else { throw .invalid("\(field).cwd", "must be an absolute path, got \"\(p.cwd)\"") }
        self.args = args
        env = p.env ?? []
        for (i, e) in env.enumerated() where !e.contains("=") {
            throw .invalid("\(field).env[\(i)]", "\"\(e)\" is not of the form KEY=value")
        }
        cwd = p.cwd
        uid = p.user.uid
        gid = p.user.gid
        groups = p.user.additionalGids ?? []
        umask = p.user.umask
        terminal = p.terminal ?? false
        if let box = p.consoleSize {
            rows = UInt16(clamping: box.height)
            cols = UInt16(clamping: box.width)
        }
        if let c = p.capabilities {
            let last = Capability.lastCap
            func mask(_ names: [String]?, _ set: String) throws(RuntimeError) -> UInt64 {
                var m: UInt64 = 0
                for name in names ?? [] {
                    guard let n = Capability.number(name), name.uppercased().hasPrefix("CAP_") else {
                        throw .invalid("\(field).capabilities.\(set)", "unknown capability \"\(name)\"")
                    }
                    // Capabilities newer than the kernel are skipped, as runc does.
                    if n <= last { m |= 1 << UInt64(n) }
                }
                return m
            }
            caps = CapabilitySets(
                bounding: try mask(c.bounding, "bounding"), effective: try mask(c.effective, "effective"),
                inheritable: try mask(c.inheritable, "inheritable"), permitted: try mask(c.permitted, "permitted"),
                ambient: try mask(c.ambient, "ambient"))
        } else {
            caps = nil
        }
        var seen = Set<String>()
        rlimits = []
        for (i, r) in (p.rlimits ?? []).enumerated() {
            guard let res = Self.rlimitNames[r.type] else {
                throw .invalid("\(field).rlimits[\(i)].type", "unknown rlimit \"\(r.type)\"")
            }
            guard seen.insert(r.type).inserted else {
                throw .invalid("\(field).rlimits[\(i)].type", "\"\(r.type)\" is set twice")
            }
            guard r.soft <= r.hard else {
                throw .invalid("\(field).rlimits[\(i)]", "soft limit \(r.soft) exceeds hard limit \(r.hard)")
            }
            rlimits.append((res, r.soft, r.hard))
        }
        noNewPrivileges = p.noNewPrivileges ?? false
        if let adj = p.oomScoreAdj, !(-1000...1000).contains(adj) {
            throw .invalid("\(field).oomScoreAdj", "\(adj) is outside -1000...1000")
        }
        oomScoreAdj = p.oomScoreAdj
    }

    /// Fills the process part of a C plan.
    func fill(_ plan: inout berth_plan, arena: Arena) {
        plan.path = arena.string(args[0])
        plan.argv = UnsafePointer(arena.strings(args))
        plan.envp = UnsafePointer(arena.strings(env))
        plan.cwd = arena.string(cwd)
        plan.uid = uid
        plan.gid = gid
        plan.groups = arena.array(groups.map { gid_t($0) })
        plan.n_groups = Int32(groups.count)
        plan.set_groups = 1
        if let umask {
            plan.has_umask = 1
            plan.umask = mode_t(umask)
        }
        plan.terminal = terminal ? 1 : 0
        plan.rows = rows
        plan.cols = cols
        if let caps {
            plan.set_caps = 1
            plan.cap_bounding = caps.bounding
            plan.cap_effective = caps.effective
            plan.cap_inheritable = caps.inheritable
            plan.cap_permitted = caps.permitted
            plan.cap_ambient = caps.ambient
            plan.last_cap = Int32(Capability.lastCap)
        }
        plan.rlimits = arena.array(rlimits.map { berth_rlimit(resource: $0.resource, soft: $0.soft, hard: $0.hard) })
        plan.n_rlimits = Int32(rlimits.count)
        plan.no_new_privileges = noNewPrivileges ? 1 : 0
        if let oomScoreAdj {
            plan.has_oom_score_adj = 1
            plan.oom_score_adj = Int32(oomScoreAdj)
        }
    }
}

