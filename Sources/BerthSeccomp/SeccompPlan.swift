import BerthOCI
import CSeccomp
import Glibc

/// A `linux.seccomp` section checked field by field and resolved to libseccomp values, before any
/// filter context exists. Every invalid input is reported here, even in rules that are later
/// skipped (unknown syscall, same action as the default), so a profile fails the same way on
/// every host.
struct SeccompPlan {
    struct Rule {
        /// Where the rule came from, for libseccomp's own errors: `linux.seccomp.syscalls[2].names[0]`.
        var field: String
        var syscallName: String
        var syscall: Int32
        var action: UInt32
        var conditions: [scmp_arg_cmp]
    }

    var defaultAction: UInt32
    var architectures: [(field: String, name: String, token: UInt32)] = []
    var rules: [Rule] = []
    var flags: UInt32 = 0
    /// Every syscall name the profile lists, kept or not: they bound the ENOSYS prefix, as in runc.
    var syscallNames: [String] = []

    init(_ profile: Seccomp) throws(SeccompError) {
        let root = "linux.seccomp"
        defaultAction = try SeccompVocabulary.action(
            profile.defaultAction, errnoRet: profile.defaultErrnoRet,
            actionField: "\(root).defaultAction", errnoField: "\(root).defaultErrnoRet")

        for (i, name) in (profile.architectures ?? []).enumerated() {
            let field = "\(root).architectures[\(i)]"
            architectures.append((field, name, try SeccompVocabulary.architecture(name, field: field)))
        }

        for (i, name) in (profile.flags ?? []).enumerated() {
            flags |= try SeccompVocabulary.filterFlag(name, field: "\(root).flags[\(i)]")
        }

        for (i, entry) in (profile.syscalls ?? []).enumerated() {
            try addRules(for: entry, field: "\(root).syscalls[\(i)]")
        }
    }

    private mutating func addRules(for entry: Seccomp.Syscall, field: String) throws(SeccompError) {
        let action = try SeccompVocabulary.action(
            entry.action, errnoRet: entry.errnoRet,
            actionField: "\(field).action", errnoField: "\(field).errnoRet")
        if entry.names.isEmpty {
            throw .invalid("\(field).names", "must contain at least one syscall name")
        }

        let args = entry.args ?? []
        var conditions: [scmp_arg_cmp] = []
        var perIndex = [Int](repeating: 0, count: SeccompVocabulary.maxArguments)
        for (j, arg) in args.enumerated() {
            let argField = "\(field).args[\(j)]"
            guard arg.index < UInt(SeccompVocabulary.maxArguments) else {
                throw .invalid("\(argField).index",
                               "\(arg.index) is out of range (syscall arguments are numbered 0 to 5)")
            }
            let op = try SeccompVocabulary.comparison(arg.op, field: "\(argField).op")
            // For SCMP_CMP_MASKED_EQ libseccomp takes the mask first: value is the mask, valueTwo the datum.
            conditions.append(scmp_arg_cmp(arg: UInt32(arg.index), op: op,
                                           datum_a: arg.value, datum_b: arg.valueTwo ?? 0))
            perIndex[Int(arg.index)] += 1
        }
        // libseccomp ANDs the conditions of one rule and rejects two on the same argument; like
        // runc, fall back to one rule per condition (ORed) when an index repeats.
        let conditionSets = perIndex.contains(where: { $0 > 1 }) ? conditions.map { [$0] } : [conditions]

        for (k, name) in entry.names.enumerated() {
            let nameField = "\(field).names[\(k)]"
            if name.isEmpty { throw .invalid(nameField, "empty syscall name") }
            syscallNames.append(name)
            // libseccomp refuses a rule whose action is the default one; it would be a no-op anyway.
            if action == defaultAction { continue }
            let number = seccomp_syscall_resolve_name(name)
            // As runc: a name this libseccomp does not know is skipped, since profiles list
            // syscalls newer than the library (or the kernel) on purpose.
            if number == __NR_SCMP_ERROR { continue }
            for set in conditionSets {
                rules.append(Rule(field: nameField, syscallName: name, syscall: number,
                                  action: action, conditions: set))
            }
        }
    }
}

/// The runtime-spec strings for actions, operators, architectures and flags, and their values.
enum SeccompVocabulary {
    static let maxArguments = 6
    /// runc's default errno for SCMP_ACT_ERRNO and SCMP_ACT_TRACE without `errnoRet`.
    static let defaultErrno = UInt32(EPERM)

    // seccomp.h defines SCMP_ACT_ERRNO(x) and SCMP_ACT_TRACE(x) as function-like macros, which
    // Swift does not import; these are their bases.
    static let actErrnoBase: UInt32 = 0x0005_0000
    static let actTraceBase: UInt32 = 0x7ff0_0000

    static let actions = ["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
                          "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG"]

    static let comparisons: [(name: String, op: scmp_compare)] = [
        ("SCMP_CMP_NE", SCMP_CMP_NE), ("SCMP_CMP_LT", SCMP_CMP_LT), ("SCMP_CMP_LE", SCMP_CMP_LE),
        ("SCMP_CMP_EQ", SCMP_CMP_EQ), ("SCMP_CMP_GE", SCMP_CMP_GE), ("SCMP_CMP_GT", SCMP_CMP_GT),
        ("SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ),
    ]

    /// Every `SCMP_ARCH_*` name libseccomp has defined; `SeccompFeatures` lists those this build resolves.
    static let architectureNames = [
        "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K",
        "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32",
        "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32",
        "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X",
        "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB",
    ]

    /// seccomp(2) filter flags. TSYNC is passed through (harmless: the child is single-threaded).
    /// WAIT_KILLABLE_RECV only applies to a notify listener, which Berth never creates, and the
    /// kernel rejects it without SECCOMP_FILTER_FLAG_NEW_LISTENER, so it is accepted as a no-op.
    static let filterFlags: [(name: String, bits: UInt32)] = [
        ("SECCOMP_FILTER_FLAG_TSYNC", 1 << 0),
        ("SECCOMP_FILTER_FLAG_LOG", 1 << 1),
        ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", 1 << 2),
        ("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", 0),
    ]

    static func action(_ name: String, errnoRet: UInt32?, actionField: String,
                       errnoField: String) throws(SeccompError) -> UInt32 {
        // runtime-spec: errnoRet on an action that takes no errno "MUST print an error and fail".
        func noErrno(_ value: UInt32) throws(SeccompError) -> UInt32 {
            if let errnoRet {
                throw .invalid(errnoField,
                               "\(errnoRet) given, but \(name) takes no errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)")
            }
            return value
        }
        func withData(_ base: UInt32) throws(SeccompError) -> UInt32 {
            let data = errnoRet ?? defaultErrno
            // The action's data field is 16 bits wide.
            guard data <= 0xffff else { throw .invalid(errnoField, "\(data) is out of range 0...65535") }
            return base | data
        }
        switch name {
        case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD": return try noErrno(SCMP_ACT_KILL_THREAD)
        case "SCMP_ACT_KILL_PROCESS": return try noErrno(SCMP_ACT_KILL_PROCESS)
        case "SCMP_ACT_TRAP": return try noErrno(SCMP_ACT_TRAP)
        case "SCMP_ACT_ALLOW": return try noErrno(SCMP_ACT_ALLOW)
        case "SCMP_ACT_LOG": return try noErrno(SCMP_ACT_LOG)
        case "SCMP_ACT_ERRNO": return try withData(actErrnoBase)
        case "SCMP_ACT_TRACE": return try withData(actTraceBase)
        case "SCMP_ACT_NOTIFY":
            throw SeccompError(.unsupported,
                               "\(actionField): SCMP_ACT_NOTIFY needs a listenerPath; seccomp notify is not supported")
        default:
            throw .invalid(actionField, "unknown action \"\(name)\"")
        }
    }

    static func comparison(_ name: String, field: String) throws(SeccompError) -> scmp_compare {
        guard let match = comparisons.first(where: { $0.name == name }) else {
            throw .invalid(field, "unknown operator \"\(name)\"")
        }
        return match.op
    }

    /// libseccomp's names are the constants without `SCMP_ARCH_`, in lower case (`x86_64`, `ppc64le`).
    static func architectureToken(_ name: String) -> UInt32? {
        let prefix = "SCMP_ARCH_"
        guard name.hasPrefix(prefix), name.count > prefix.count else { return nil }
        let token = seccomp_arch_resolve_name(String(name.dropFirst(prefix.count)).lowercased())
        return token == 0 ? nil : token
    }

    static func architecture(_ name: String, field: String) throws(SeccompError) -> UInt32 {
        guard let token = architectureToken(name) else {
            throw .invalid(field, "unknown architecture \"\(name)\"")
        }
        return token
    }

    static func filterFlag(_ name: String, field: String) throws(SeccompError) -> UInt32 {
        guard let match = filterFlags.first(where: { $0.name == name }) else {
            throw .invalid(field, "unknown flag \"\(name)\"")
        }
        return match.bits
    }
}
