/// Linux capability names and numbers (capability.h), for the runtime spec's `CAP_*` strings.
public enum Capability {
    public static let names: [String] = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
        "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
        "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
        "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ]

    /// The number of a capability name; accepts the name with or without `CAP_`, any case.
    public static func number(_ name: String) -> Int? {
        let upper = name.uppercased()
        let full = upper.hasPrefix("CAP_") ? upper : "CAP_" + upper
        return names.firstIndex(of: full)
    }

    /// The highest capability the running kernel knows (`/proc/sys/kernel/cap_last_cap`).
    public static let lastCap: Int = {
        if let text = try? FileSystem.readString("/proc/sys/kernel/cap_last_cap"),
           let n = Int(text.filter { !$0.isWhitespace }) {
            return n
        }
        return names.count - 1
    }()

    /// The capabilities this process can hand on: those of the running kernel still in its
    /// bounding set (`CapBnd` in /proc/self/status). What `--privileged` and `--cap-add ALL`
    /// mean, as dockerd computes them: a daemon in a sandbox may lack some, and asking for
    /// those makes capset fail.
    public static let available: [String] = {
        let status = (try? FileSystem.readString("/proc/self/status")) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("CapBnd:") }
        let bounding = line.flatMap { UInt64($0.dropFirst("CapBnd:".count).filter { !$0.isWhitespace }, radix: 16) } ?? ~0
        return names.prefix(lastCap + 1).enumerated().filter { bounding & (1 << UInt64($0.offset)) != 0 }.map(\.element)
    }()
}
