/// A compiled seccomp program, ready for `seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog)`.
///
/// The bytes are the `struct sock_filter` array exactly as `seccomp_export_bpf` writes it
/// (host byte order), so the C child only has to wrap them in a `struct sock_fprog`.
public struct SeccompFilter: Sendable, Equatable {
    /// Raw `struct sock_filter` instructions, 8 bytes each.
    public let instructions: [UInt8]
    /// `SECCOMP_FILTER_FLAG_*` bits derived from the profile's `flags`.
    public let flags: UInt32
    /// Number of BPF instructions (`sock_fprog.len`).
    public var count: Int { instructions.count / 8 }

    init(instructions: [UInt8], flags: UInt32) {
        self.instructions = instructions
        self.flags = flags
    }
}

/// Why a `linux.seccomp` section could not be compiled. The message names the offending field,
/// e.g. `linux.seccomp.syscalls[2].args[0].op: unknown operator "SCMP_CMP_FOO"`.
public struct SeccompError: Error, CustomStringConvertible, Equatable {
    public enum Code: Sendable, Equatable {
        /// The profile is malformed: unknown names, out-of-range values.
        case invalidArgument
        /// The profile is valid but asks for something Berth does not implement (seccomp notify).
        case unsupported
        /// libseccomp or the kernel failed on a valid profile.
        case system
    }

    public let code: Code
    public let message: String
    public var description: String { message }

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    static func invalid(_ field: String, _ problem: String) -> SeccompError {
        SeccompError(.invalidArgument, "\(field): \(problem)")
    }
}
