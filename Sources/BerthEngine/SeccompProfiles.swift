import BerthOCI
import FoundationEssentials

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

    /// The OCI profile for a container holding `capabilities` (full `CAP_*` names).
    public func ociProfile(capabilities: Set<String>) throws(EngineError) -> Seccomp {
        if architectures?.isEmpty == false && archMap?.isEmpty == false {
            throw EngineError(.invalidArgument, "'architectures' and 'archMap' were specified in the seccomp profile, use either 'architectures' or 'archMap'")
        }
        var arches = architectures
        if let archMap, !archMap.isEmpty {
            arches = archMap.filter { $0.architecture == Self.nativeArch }
                .flatMap { [$0.architecture] + ($0.subArchitectures ?? []) }
        }
        func holds(_ cap: String) -> Bool { capabilities.contains(SpecBuilder.fullCapabilityName(cap)) }
        var rules: [Seccomp.Syscall] = []
        for rule in syscalls ?? [] {
            if let inc = rule.includes {
                if let caps = inc.caps, !caps.isEmpty, !caps.allSatisfy(holds) { continue }
                if let a = inc.arches, !a.isEmpty, !a.contains(Self.goArch) { continue }
            }
            if let exc = rule.excludes {
                if let caps = exc.caps, caps.contains(where: holds) { continue }
                if let a = exc.arches, a.contains(Self.goArch) { continue }
            }
            let names = rule.names ?? (rule.name.map { [$0] } ?? [])
            if names.isEmpty { throw EngineError(.invalidArgument, "seccomp profile: a syscall rule has neither name nor names") }
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

/// Berth's own default seccomp profile.
///
/// Why a deny-list (default ALLOW): an allow-list of every syscall a general workload needs is
/// large and must track each kernel release; until Berth carries one, it denies the syscalls
/// Docker documents as blocked by default, re-allowing those a held capability legitimately
/// grants. A syscall unknown to this list is allowed, which is weaker than Docker's default.
public enum BerthDefaultSeccomp {
    static let eperm: UInt32 = 1

    /// Syscalls denied unless the container holds one of the listed capabilities
    /// (an empty list: always denied).
    static let gated: [(names: [String], unlessAny: [String])] = [
        (["mount", "umount", "umount2", "setns", "unshare", "pivot_root", "name_to_handle_at",
          "lookup_dcookie", "quotactl", "swapon", "swapoff"], ["CAP_SYS_ADMIN"]),
        (["bpf"], ["CAP_SYS_ADMIN", "CAP_BPF"]),
        (["perf_event_open"], ["CAP_SYS_ADMIN", "CAP_PERFMON"]),
        (["ptrace", "process_vm_readv", "process_vm_writev", "kcmp"], ["CAP_SYS_PTRACE"]),
        (["clock_settime", "settimeofday", "stime", "clock_adjtime"], ["CAP_SYS_TIME"]),
        (["create_module", "delete_module", "finit_module", "init_module", "query_module",
          "get_kernel_syms"], ["CAP_SYS_MODULE"]),
        (["reboot", "kexec_load", "kexec_file_load"], ["CAP_SYS_BOOT"]),
        (["acct"], ["CAP_SYS_PACCT"]),
        (["ioperm", "iopl"], ["CAP_SYS_RAWIO"]),
        (["get_mempolicy", "set_mempolicy", "mbind", "move_pages"], ["CAP_SYS_NICE"]),
        (["open_by_handle_at"], ["CAP_DAC_READ_SEARCH"]),
        // Kernel keyring is not namespaced; obsolete or unsafe calls follow.
        (["add_key", "keyctl", "request_key", "nfsservctl", "sysfs", "_sysctl", "uselib",
          "userfaultfd", "ustat", "vm86", "vm86old"], []),
    ]

    /// Personas Docker allows: PER_LINUX (0), PER_LINUX32 (8), UNAME26 (0x20000), their union,
    /// and the 0xffffffff query. Bits 3 and 17 are the only ones they use besides the query.
    static let safePersonaBits: UInt64 = 0x20008

    public static func profile(capabilities: Set<String>) -> Seccomp {
        var rules: [Seccomp.Syscall] = []
        for group in gated where !group.unlessAny.contains(where: capabilities.contains) {
            rules.append(Seccomp.Syscall(names: group.names, action: "SCMP_ACT_ERRNO", errnoRet: eperm))
        }
        // Deny personality(p) when p sets any bit outside the safe personas. Rules are OR'd and
        // one comparison per argument, so "not one of these values" is spelt bit by bit; the
        // 0xffffffff query is denied as a result (a known gap of the deny-list).
        for bit in 0..<32 where (safePersonaBits >> UInt64(bit)) & 1 == 0 {
            let mask: UInt64 = 1 << UInt64(bit)
            rules.append(Seccomp.Syscall(names: ["personality"], action: "SCMP_ACT_ERRNO", errnoRet: eperm,
                                         args: [Seccomp.Arg(index: 0, value: mask, valueTwo: mask, op: "SCMP_CMP_MASKED_EQ")]))
        }
        return Seccomp(defaultAction: "SCMP_ACT_ALLOW",
                       architectures: [DockerSeccompProfile.nativeArch] + DockerSeccompProfile.nativeSubArches,
                       syscalls: rules)
    }
}
