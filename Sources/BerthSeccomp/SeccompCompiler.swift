import BerthOCI
import CSeccomp
import Glibc
import Synchronization

/// BerthSeccomp turns the OCI `linux.seccomp` section into a BPF program with libseccomp.
///
/// It owns profile validation and compilation only. It does not install filters: the runtime's C
/// child does that after clone() from the raw bytes in `SeccompFilter`. It imports BerthOCI (spec
/// types) and CSeccomp, never the runtime.
///
/// Semantics follow runtime-spec config-linux.md ("Seccomp") and runc: unknown syscall names are
/// skipped, rules repeating the default action are dropped, SCMP_ACT_NOTIFY is rejected, and a
/// syscall numbered above every one the profile names gets ENOSYS unless the default allows it.
public enum SeccompCompiler {
    /// Compiles `profile` to the BPF program the kernel runs.
    public static func compile(_ profile: Seccomp) throws(SeccompError) -> SeccompFilter {
        let plan = try SeccompPlan(profile)
        let bytes = try withFilterContext(plan) { context throws(SeccompError) in
            try enosysStub(for: plan) + exportedBytes(of: context, as: "BPF", seccomp_export_bpf)
        }
        // BPF_MAXINSNS: the kernel refuses a longer program.
        guard bytes.count / 8 <= 4096 else {
            throw SeccompError(.invalidArgument, "linux.seccomp: the profile compiles to \(bytes.count / 8) BPF instructions, more than the kernel's 4096")
        }
        return SeccompFilter(instructions: bytes, flags: plan.flags)
    }

    /// runc's ENOSYS prefix (see `EnosysStub`), bounded by the syscalls the profile names, on the
    /// host's architecture and on each one the profile adds.
    private static func enosysStub(for plan: SeccompPlan) throws(SeccompError) -> [UInt8] {
        guard EnosysStub.applies(toDefault: plan.defaultAction) else { return [] }
        let architectures = [seccomp_arch_native()] + plan.architectures.map(\.token)
        return try EnosysStub.instructions(
            bounds: EnosysStub.largestSyscalls(names: plan.syscallNames, architectures: architectures))
    }

    /// The same filter as libseccomp's pseudo filter code (`seccomp_export_pfc`), for debugging and
    /// tests. It does not show the ENOSYS prefix, which libseccomp does not know.
    public static func pseudoCode(_ profile: Seccomp) throws(SeccompError) -> String {
        let plan = try SeccompPlan(profile)
        let bytes = try withFilterContext(plan) { context throws(SeccompError) in
            try exportedBytes(of: context, as: "pseudo filter code", seccomp_export_pfc)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // libseccomp probes the kernel lazily into unsynchronised globals (API level, supported
    // actions), so contexts are built one at a time.
    private static let libseccompLock = Mutex(())

    /// Builds a libseccomp context from `plan`, hands it to `body`, and always releases it.
    private static func withFilterContext<T: Sendable>(
        _ plan: SeccompPlan, _ body: (scmp_filter_ctx) throws(SeccompError) -> T
    ) throws(SeccompError) -> T {
        try libseccompLock.withLock { _ throws(SeccompError) -> T in
            guard let context = seccomp_init(plan.defaultAction) else {
                throw SeccompError(.system,
                                   "linux.seccomp.defaultAction: libseccomp refused the action (not supported by this kernel?)")
            }
            defer { seccomp_release(context) }
            try configure(context, plan)
            return try body(context)
        }
    }

    private static func configure(_ context: scmp_filter_ctx, _ plan: SeccompPlan) throws(SeccompError) {
        // The runtime sets no_new_privs itself when process.noNewPrivileges asks for it, and the
        // child installs the filter while single-threaded.
        try check(seccomp_attr_set(context, SCMP_FLTATR_CTL_NNP, 0), "linux.seccomp", "setting SCMP_FLTATR_CTL_NNP")
        try check(seccomp_attr_set(context, SCMP_FLTATR_CTL_TSYNC, 0), "linux.seccomp", "setting SCMP_FLTATR_CTL_TSYNC")

        // Architectures come before rules: a rule is only generated for the architectures present.
        for (field, name, token) in plan.architectures {
            switch seccomp_arch_add(context, token) {
            case -EEXIST: continue  // the native architecture is always present
            case -EDOM:  // one filter serves a single byte order
                throw .invalid(field, "\(name) cannot be combined with the host's architecture (different byte order)")
            case let rc: try check(rc, field, "adding the architecture")
            }
        }

        for rule in plan.rules {
            // Not the _exact variant: libseccomp may then rewrite a rule for multiplexed syscalls
            // (socketcall, ipc) on 32-bit x86 and similar.
            let rc = rule.conditions.withUnsafeBufferPointer { conditions in
                seccomp_rule_add_array(context, rule.action, rule.syscall,
                                       UInt32(conditions.count), conditions.baseAddress)
            }
            try check(rc, rule.field, "adding the rule for \"\(rule.syscallName)\"")
        }
    }

    /// libseccomp returns a negated errno.
    private static func check(_ rc: Int32, _ field: String, _ step: String) throws(SeccompError) {
        guard rc < 0 else { return }
        throw SeccompError(.system, "\(field): libseccomp failed \(step): \(String(cString: strerror(-rc)))")
    }

    /// libseccomp 2.5 only exports to a file descriptor; a memfd keeps it off the filesystem and,
    /// unlike a pipe, cannot block on a large filter.
    private static func exportedBytes(
        of context: scmp_filter_ctx, as what: String, _ export: (scmp_filter_ctx, Int32) -> Int32
    ) throws(SeccompError) -> [UInt8] {
        let fd = try AnonymousFile.create(name: "berth-seccomp")
        defer { close(fd) }
        try check(export(context, fd), "linux.seccomp", "exporting the \(what)")
        return try AnonymousFile.readAll(fd)
    }
}

/// memfd_create(2) helpers. Glibc declares memfd_create only under _GNU_SOURCE, which Swift's
/// Glibc module does not define, so the symbol is looked up at run time (glibc >= 2.27).
enum AnonymousFile {
    private typealias MemfdCreate = @convention(c) (UnsafePointer<CChar>?, UInt32) -> Int32
    private static let mfdCloexec: UInt32 = 1  // MFD_CLOEXEC, <linux/memfd.h>

    static func create(name: String) throws(SeccompError) -> Int32 {
        guard let symbol = dlsym(nil, "memfd_create") else {  // nil is RTLD_DEFAULT
            throw SeccompError(.system, "linux.seccomp: memfd_create is not available in this C library")
        }
        let memfdCreate = unsafeBitCast(symbol, to: MemfdCreate.self)
        let fd = memfdCreate(name, mfdCloexec)
        if fd < 0 { throw systemError("memfd_create") }
        return fd
    }

    /// Reads the whole file from offset 0.
    static func readAll(_ fd: Int32) throws(SeccompError) -> [UInt8] {
        if lseek(fd, 0, SEEK_SET) < 0 { throw systemError("lseek") }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                bytes.append(contentsOf: chunk[..<n])
            } else if n == 0 {
                return bytes
            } else if errno != EINTR {
                throw systemError("read")
            }
        }
    }

    private static func systemError(_ call: String) -> SeccompError {
        SeccompError(.system, "linux.seccomp: \(call) failed while exporting the filter: \(String(cString: strerror(errno)))")
    }
}
