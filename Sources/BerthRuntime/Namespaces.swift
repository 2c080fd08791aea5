import BerthOCI
import CBerthSys
import Glibc

/// The namespace kinds of the runtime spec, with their clone flag and /proc/PID/ns name.
enum NamespaceKind: String, CaseIterable {
    case user, pid, network, mount, ipc, uts, cgroup, time

    var cloneFlag: Int32 {
        switch self {
        // sched.h's values; Glibc's Swift module hides them behind _GNU_SOURCE.
        case .user: return 0x1000_0000
        case .pid: return 0x2000_0000
        case .network: return 0x4000_0000
        case .mount: return 0x0002_0000
        case .ipc: return 0x0800_0000
        case .uts: return 0x0400_0000
        case .cgroup: return 0x0200_0000
        case .time: return 0x0000_0080
        }
    }

    var procName: String {
        switch self {
        case .network: return "net"
        case .mount: return "mnt"
        default: return rawValue
        }
    }
}

/// Which namespaces a container creates and which it joins.
struct NamespacePlan {
    var create: Set<NamespaceKind> = []
    var join: [(kind: NamespaceKind, path: String)] = []

    init(_ namespaces: [Namespace]?) throws(RuntimeError) {
        var seen = Set<NamespaceKind>()
        for (i, ns) in (namespaces ?? []).enumerated() {
            guard let kind = NamespaceKind(rawValue: ns.type) else {
                throw .invalid("linux.namespaces[\(i)].type", "unknown namespace type \"\(ns.type)\"")
            }
            guard seen.insert(kind).inserted else {
                throw .invalid("linux.namespaces[\(i)].type", "namespace \"\(ns.type)\" is listed twice")
            }
            if let path = ns.path, !path.isEmpty {
                guard path.hasPrefix("/") else {
                    throw .invalid("linux.namespaces[\(i)].path", "must be absolute, got \"\(path)\"")
                }
                join.append((kind, path))
            } else {
                create.insert(kind)
            }
        }
    }

    func has(_ kind: NamespaceKind) -> Bool { create.contains(kind) || join.contains { $0.kind == kind } }

    var cloneFlags: Int32 {
        create.filter { $0 != .time }.reduce(0) { $0 | $1.cloneFlag }
    }

    /// Opens the namespace files to join; the caller closes them after the spawn.
    func openJoins() throws(RuntimeError) -> [berth_join] {
        var out: [berth_join] = []
        for j in join {
            let fd = open(j.path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                let e = String(cString: strerror(errno))
                for o in out { close(o.fd) }
                throw RuntimeError(.invalidArgument, "linux.namespaces: cannot open \(j.kind.rawValue) namespace \(j.path): \(e)")
            }
            out.append(berth_join(type: j.kind.cloneFlag, fd: fd))
        }
        return out
    }
}

