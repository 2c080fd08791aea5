import BerthOCI
import FoundationEssentials
import Glibc

/// Docker's seccomp profile file format (what `--security-opt seccomp=<file>` sends inline),
/// reduced to the OCI `linux.seccomp` section for one container.
public struct DockerSeccompProfile: Codable, Sendable, Equatable {
    public var defaultAction: String
    public var defaultErrnoRet: UInt32?
    public var architectures: [String]?
    public var archMap: [ArchMapEntry]?
    public var flags: [String]?
    public var syscalls: [Rule]?

    public struct ArchMapEntry: Codable, Sendable, Equatable {
        public var architecture: String
        public var subArchitectures: [String]?
    }

    /// A rule's `includes` / `excludes`: capabilities (all held / any held), Go architecture
    /// names, and a minimum kernel `major.minor`.
    public struct Filter: Codable, Sendable, Equatable {
        public var caps: [String]?
        public var arches: [String]?
        public var minKernel: String?
    }

    public struct Rule: Codable, Sendable, Equatable {
        public var name: String?
        public var names: [String]?
        public var action: String
        public var errnoRet: UInt32?
        public var args: [Seccomp.Arg]?
        public var includes: Filter?
        public var excludes: Filter?
        public var comment: String?
    }

    /// Go's GOARCH and libseccomp's name for the architecture Berth runs on; profiles'
    /// `includes.arches` use the former, `architectures`/`archMap` the latter.
    #if arch(arm64)
    static let goArch = "arm64"
    static let nativeArch = "SCMP_ARCH_AARCH64"
    static let nativeSubArches = ["SCMP_ARCH_ARM"]
    #else
    static let goArch = "amd64"
    static let nativeArch = "SCMP_ARCH_X86_64"
    static let nativeSubArches = ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    #endif

    /// The OCI profile for a container holding `capabilities` (full `CAP_*` names, Docker checks
    /// the bounding set) on a host running `kernel`.
    public func ociProfile(capabilities: Set<String>, kernel: KernelRelease? = .running) throws(EngineError) -> Seccomp {
        try validate()
        return resolved(capabilities: capabilities, kernel: kernel)
    }

    /// The checks Docker makes before resolving a profile (profiles/seccomp/seccomp_linux.go).
    func validate() throws(EngineError) {
        if architectures?.isEmpty == false && archMap?.isEmpty == false {
            throw EngineError(.invalidArgument, "'architectures' and 'archMap' were specified in the seccomp profile, use either 'architectures' or 'archMap'")
        }
        for rule in syscalls ?? [] {
            if rule.name != nil && rule.names?.isEmpty == false {
                throw EngineError(.invalidArgument, "'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'")
            }
            if rule.name == nil && (rule.names ?? []).isEmpty {
                throw EngineError(.invalidArgument, "seccomp profile: a syscall rule has neither name nor names")
            }
            for minKernel in [rule.includes?.minKernel, rule.excludes?.minKernel].compactMap({ $0 })
            where KernelRelease(minKernel) == nil {
                throw EngineError(.invalidArgument, "seccomp profile: invalid minKernel \"\(minKernel)\" (want major.minor, e.g. 4.8)")
            }
        }
    }

    /// Keeps the rules whose `includes` all hold and whose `excludes` none hold, as Docker does.
    /// An unknown kernel (`nil`) satisfies no minKernel. Expects a profile that passed `validate()`.
    func resolved(capabilities: Set<String>, kernel: KernelRelease?) -> Seccomp {
        var arches = architectures
        if let archMap, !archMap.isEmpty {
            arches = archMap.filter { $0.architecture == Self.nativeArch }
                .flatMap { [$0.architecture] + ($0.subArchitectures ?? []) }
        }
        func holds(_ cap: String) -> Bool { capabilities.contains(SpecBuilder.fullCapabilityName(cap)) }
        func atLeast(_ minKernel: String) -> Bool {
            guard let kernel, let wanted = KernelRelease(minKernel) else { return false }
            return kernel >= wanted
        }
        var rules: [Seccomp.Syscall] = []
        for rule in syscalls ?? [] {
            if let inc = rule.includes {
                if let caps = inc.caps, !caps.isEmpty, !caps.allSatisfy(holds) { continue }
                if let a = inc.arches, !a.isEmpty, !a.contains(Self.goArch) { continue }
                if let k = inc.minKernel, !atLeast(k) { continue }
            }
            if let exc = rule.excludes {
                if let caps = exc.caps, caps.contains(where: holds) { continue }
                if let a = exc.arches, a.contains(Self.goArch) { continue }
                if let k = exc.minKernel, atLeast(k) { continue }
            }
            let names = rule.names ?? (rule.name.map { [$0] } ?? [])
            rules.append(Seccomp.Syscall(names: names, action: rule.action, errnoRet: rule.errnoRet, args: rule.args))
        }
        return Seccomp(defaultAction: defaultAction, defaultErrnoRet: defaultErrnoRet, architectures: arches,
                       flags: flags, syscalls: rules)
    }

    public static func decode(_ json: String) throws(EngineError) -> DockerSeccompProfile {
        do {
            return try JSONDecoder().decode(DockerSeccompProfile.self, from: Data(json.utf8))
        } catch {
            throw EngineError(.invalidArgument, "decoding seccomp profile failed: \(error)")
        }
    }
}

/// A kernel's `major.minor`, all that Docker's `minKernel` compares ("3.12.25-gentoo" is 3.12).
public struct KernelRelease: Sendable, Comparable {
    public var major: Int
    public var minor: Int

    public init(major: Int, minor: Int) { self.major = major; self.minor = minor }

    /// Parses the leading `major.minor` of a release string; nil when there is none.
    public init?(_ release: String) {
        let parts = release.split(separator: ".", maxSplits: 2)
        guard parts.count >= 2, let major = Int(parts[0]),
              let minor = Int(parts[1].prefix { $0.isASCII && $0.isNumber }) else { return nil }
        self.init(major: major, minor: minor)
    }

    /// The running kernel (`uname -r`); nil if it cannot be read.
    public static let running: KernelRelease? = {
        var u = utsname()
        guard uname(&u) == 0 else { return nil }
        let release = withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return KernelRelease(release)
    }()

    public static func < (a: KernelRelease, b: KernelRelease) -> Bool { (a.major, a.minor) < (b.major, b.minor) }
}

/// Berth's default seccomp profile: Docker's default allow-list, with its argument, capability,
/// architecture and kernel conditions, in Docker's own profile format so that it resolves for a
/// container's capabilities through the same `includes`/`excludes` logic as a user's profile.
///
/// Anything not listed fails with EPERM. The compiler (BerthSeccomp) adds, as runc does for
/// Docker, ENOSYS for syscall numbers above the largest one the profile names, so a syscall newer
/// than this list looks absent and libc falls back. Where Berth departs from Docker 20.10's profile
/// is listed, with reasons, in SeccompDefaultProfileTests, which compares the two rule by rule.
public enum BerthDefaultSeccomp {
    /// The profile resolved for a container holding `capabilities` (full `CAP_*` names).
    public static func profile(capabilities: Set<String>, kernel: KernelRelease? = .running) -> Seccomp {
        template.resolved(capabilities: capabilities, kernel: kernel)
    }

    // Kernel constants the conditions compare with.
    static let eperm: UInt32 = 1
    static let enosys: UInt32 = 38
    static let enosysOnMIPS: UInt32 = 89  // MIPS numbers its errnos differently
    /// CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET: clone creating any namespace.
    static let cloneNamespaceFlags: UInt64 = 0x7E02_0000
    static let afNetlink: UInt64 = 16
    static let netlinkNetfilter: UInt64 = 12
    /// PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and 0xffffffff (query only).
    static let allowedPersonas: [UInt64] = [0x0, 0x8, 0x2_0000, 0x2_0008, 0xFFFF_FFFF]

    /// Syscalls every container may make, whatever its capabilities. Grouped by what they touch;
    /// `socket` is absent (conditional, below) and so are io_uring_* (see the tests' differences).
    static let alwaysAllowed: [String] = filesAndDirectories + extendedAttributes + waitingForEvents
        + asynchronousIO + memory + processesAndThreads + credentials + signals + time + networking + ipc

    static let filesAndDirectories = [
        "access", "chdir", "chmod", "chown", "chown32", "close", "close_range", "copy_file_range", "creat",
        "dup", "dup2", "dup3", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fchdir",
        "fchmod", "fchmodat", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync", "flock",
        "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64",
        "futimesat", "getcwd", "getdents", "getdents64", "lchown", "lchown32", "link", "linkat", "_llseek",
        "lseek", "lstat", "lstat64", "mkdir", "mkdirat", "mknod", "mknodat", "newfstatat", "open", "openat",
        "openat2", "pipe", "pipe2", "pread64", "preadv", "preadv2", "pwrite64", "pwritev", "pwritev2", "read",
        "readahead", "readlink", "readlinkat", "readv", "rename", "renameat", "renameat2", "rmdir", "sendfile",
        "sendfile64", "splice", "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync",
        "sync_file_range", "syncfs", "tee", "truncate", "truncate64", "umask", "unlink", "unlinkat", "utime",
        "utimensat", "utimensat_time64", "utimes", "vmsplice", "write", "writev",
    ]
    static let extendedAttributes = [
        "fgetxattr", "flistxattr", "fremovexattr", "fsetxattr", "getxattr", "lgetxattr", "listxattr",
        "llistxattr", "lremovexattr", "lsetxattr", "removexattr", "setxattr",
    ]
    static let waitingForEvents = [
        "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2",
        "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "fanotify_mark", "inotify_add_watch",
        "inotify_init", "inotify_init1", "inotify_rm_watch", "_newselect", "poll", "ppoll", "ppoll_time64",
        "pselect6", "pselect6_time64", "select", "signalfd", "signalfd4", "timerfd_create", "timerfd_gettime",
        "timerfd_gettime64", "timerfd_settime", "timerfd_settime64",
    ]
    static let asynchronousIO = [
        "io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64", "io_setup",
        "io_submit", "ioctl", "ioprio_get", "ioprio_set",
    ]
    static let memory = [
        "brk", "madvise", "membarrier", "memfd_create", "memfd_secret", "mincore", "mlock", "mlock2",
        "mlockall", "mmap", "mmap2", "mprotect", "mremap", "msync", "munlock", "munlockall", "munmap",
        "remap_file_pages",
    ]
    static let processesAndThreads = [
        "capget", "capset", "execve", "execveat", "exit", "exit_group", "fork", "futex", "futex_time64",
        "futex_waitv", "get_robust_list", "get_thread_area", "getcpu", "getpgid", "getpgrp", "getpid",
        "getppid", "getpriority", "getrandom", "getrlimit", "getrusage", "getsid", "gettid", "kill",
        "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "pidfd_open",
        "pidfd_send_signal", "prctl", "prlimit64", "process_mrelease", "restart_syscall", "rseq",
        "sched_get_priority_max", "sched_get_priority_min", "sched_getaffinity", "sched_getattr",
        "sched_getparam", "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64",
        "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp",
        "set_robust_list", "set_thread_area", "set_tid_address", "setpgid", "setpriority", "setrlimit",
        "setsid", "sysinfo", "tgkill", "times", "tkill", "ugetrlimit", "uname", "vfork", "wait4", "waitid",
        "waitpid",
    ]
    static let credentials = [
        "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32",
        "getresgid", "getresgid32", "getresuid", "getresuid32", "getuid", "getuid32", "setfsgid", "setfsgid32",
        "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setregid", "setregid32",
        "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setuid", "setuid32",
    ]
    static let signals = [
        "pause", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
        "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sigaltstack",
        "sigprocmask", "sigreturn",
    ]
    // adjtimex and clock_adjtime only read the clock without CAP_SYS_TIME (the kernel checks).
    static let time = [
        "adjtimex", "alarm", "clock_adjtime", "clock_adjtime64", "clock_getres", "clock_getres_time64",
        "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "getitimer",
        "gettimeofday", "nanosleep", "setitimer", "time", "timer_create", "timer_delete", "timer_getoverrun",
        "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64",
    ]
    static let networking = [
        "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt", "listen", "recv",
        "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "send", "sendmmsg", "sendmsg", "sendto",
        "setsockopt", "shutdown", "socketcall", "socketpair",
    ]
    static let ipc = [
        "ipc", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
        "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "msgctl", "msgget", "msgrcv", "msgsnd", "semctl",
        "semget", "semop", "semtimedop", "semtimedop_time64", "shmat", "shmctl", "shmdt", "shmget",
    ]

    /// What CAP_SYS_ADMIN unlocks: mounting (old and new API), namespaces, quotas, BPF, perf,
    /// fanotify, the host name, the kernel log.
    static let sysAdmin = [
        "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
        "lookup_dcookie", "mount", "mount_setattr", "move_mount", "name_to_handle_at", "open_tree",
        "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog",
        "umount", "umount2", "unshare",
    ]

    /// Syscalls allowed only with one capability, whose kernel checks they would otherwise reach.
    static let byCapability: [(cap: String, names: [String])] = [
        ("CAP_DAC_READ_SEARCH", ["open_by_handle_at"]),
        ("CAP_SYS_ADMIN", sysAdmin),
        ("CAP_SYS_BOOT", ["reboot"]),
        ("CAP_SYS_CHROOT", ["chroot"]),
        ("CAP_SYS_MODULE", ["delete_module", "init_module", "finit_module"]),
        ("CAP_SYS_PACCT", ["acct"]),
        ("CAP_SYS_PTRACE", ["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"]),
        ("CAP_SYS_RAWIO", ["iopl", "ioperm"]),
        ("CAP_SYS_TIME", ["settimeofday", "stime", "clock_settime"]),
        ("CAP_SYS_TTY_CONFIG", ["vhangup"]),
        ("CAP_SYS_NICE", ["get_mempolicy", "mbind", "set_mempolicy"]),
        ("CAP_SYSLOG", ["syslog"]),
    ]

    /// Syscalls that exist only on some architectures (Go names, as in `includes.arches`).
    static let byArchitecture: [(arches: [String], names: [String])] = [
        (["ppc64le"], ["sync_file_range2"]),
        (["arm", "arm64"], ["arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"]),
        (["amd64", "x32"], ["arch_prctl"]),
        (["amd64", "x32", "x86"], ["modify_ldt"]),
        (["s390", "s390x"], ["s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"]),
    ]

    static let mipsArches = ["mips3l64n32", "mips64", "mips64n32", "mipsel", "mipsel64"]

    typealias Rule = DockerSeccompProfile.Rule
    typealias Filter = DockerSeccompProfile.Filter

    static func allow(_ names: [String], args: [Seccomp.Arg]? = nil, includes: Filter? = nil, excludes: Filter? = nil) -> Rule {
        Rule(names: names, action: "SCMP_ACT_ALLOW", args: args, includes: includes, excludes: excludes)
    }

    static func arg(_ index: UInt, _ op: String, _ value: UInt64) -> Seccomp.Arg {
        Seccomp.Arg(index: index, value: value, op: op)
    }

    static var rules: [Rule] {
        var rules = [allow(alwaysAllowed)]
        // ptrace cannot bypass seccomp since Linux 4.8, so it needs no capability from then on.
        rules.append(allow(["ptrace"], includes: Filter(minKernel: "4.8")))
        rules += allowedPersonas.map { allow(["personality"], args: [arg(0, "SCMP_CMP_EQ", $0)]) }
        rules += byArchitecture.map { allow($0.names, includes: Filter(arches: $0.arches)) }
        rules += byCapability.map { allow($0.names, includes: Filter(caps: [$0.cap])) }
        // Without CAP_SYS_ADMIN, clone may start processes and threads but create no namespace.
        // s390 passes the flags in the second argument.
        let noNamespace = { (index: UInt) in [Seccomp.Arg(index: index, value: cloneNamespaceFlags, op: "SCMP_CMP_MASKED_EQ")] }
        rules.append(allow(["clone"], args: noNamespace(0), excludes: Filter(caps: ["CAP_SYS_ADMIN"], arches: ["s390", "s390x"])))
        rules.append(allow(["clone"], args: noNamespace(1), includes: Filter(arches: ["s390", "s390x"]),
                           excludes: Filter(caps: ["CAP_SYS_ADMIN"])))
        // clone3 passes its flags in memory, out of the filter's reach: answer ENOSYS so that libc
        // falls back to clone(2), whose flags the rule above checks.
        rules.append(Rule(names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: enosys,
                          excludes: Filter(caps: ["CAP_SYS_ADMIN"], arches: mipsArches)))
        rules.append(Rule(names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: enosysOnMIPS,
                          includes: Filter(arches: mipsArches), excludes: Filter(caps: ["CAP_SYS_ADMIN"])))
        // Every socket, except netfilter's netlink without CAP_NET_ADMIN: nfnetlink refuses each of
        // its messages without that capability, so the socket only exposes nf_tables' parsing
        // (and module autoloading) to a container that cannot use it.
        rules.append(allow(["socket"], includes: Filter(caps: ["CAP_NET_ADMIN"])))
        rules += socketUnless(family: afNetlink, familyBits: 6, protocol: netlinkNetfilter, protocolBits: 5)
        return rules
    }

    /// Rules allowing socket(2) unless both its family and protocol are the given ones.
    ///
    /// The kernel reads both as `int`, so a condition must ignore the upper 32 bits of the
    /// register, or a caller sets them and slips past an NE comparison. Hence one MASKED_EQ rule
    /// per low bit, each allowing the call when that bit differs from the refused value (rules are
    /// ORed, the conditions of one rule ANDed). Only the low bits that can matter are checked: the
    /// kernel refuses families from AF_MAX (46, under 2^6) and netlink protocols from MAX_LINKS (32,
    /// 2^5) itself, so a value differing only above them gets EPERM here instead of its EAFNOSUPPORT
    /// or EPROTONOSUPPORT. 32-bit x86 programs may still reach socket through socketcall, whose
    /// arguments are in memory (as with Docker's own socket rules): this is defence in depth.
    static func socketUnless(family: UInt64, familyBits: Int, protocol proto: UInt64, protocolBits: Int) -> [Rule] {
        func differs(argument index: UInt, from value: UInt64, bits: Int) -> [Rule] {
            (0..<bits).map { bit in
                let mask: UInt64 = 1 << UInt64(bit)
                return allow(["socket"], args: [Seccomp.Arg(index: index, value: mask, valueTwo: ~value & mask, op: "SCMP_CMP_MASKED_EQ")],
                             excludes: Filter(caps: ["CAP_NET_ADMIN"]))
            }
        }
        return differs(argument: 0, from: family, bits: familyBits) + differs(argument: 2, from: proto, bits: protocolBits)
    }

    /// Architectures a filter covers for each native one, as Docker's `archMap`.
    static let archMap: [DockerSeccompProfile.ArchMapEntry] = [
        .init(architecture: "SCMP_ARCH_X86_64", subArchitectures: ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
        .init(architecture: "SCMP_ARCH_AARCH64", subArchitectures: ["SCMP_ARCH_ARM"]),
        .init(architecture: "SCMP_ARCH_MIPS64", subArchitectures: ["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"]),
        .init(architecture: "SCMP_ARCH_MIPS64N32", subArchitectures: ["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64"]),
        .init(architecture: "SCMP_ARCH_MIPSEL64", subArchitectures: ["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32"]),
        .init(architecture: "SCMP_ARCH_MIPSEL64N32", subArchitectures: ["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64"]),
        .init(architecture: "SCMP_ARCH_S390X", subArchitectures: ["SCMP_ARCH_S390"]),
    ]

    /// The whole profile, before resolution for a container.
    public static let template = DockerSeccompProfile(
        defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: eperm, archMap: archMap, syscalls: rules)
}
