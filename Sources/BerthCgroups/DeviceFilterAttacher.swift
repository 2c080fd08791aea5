import CBerthSys
#if canImport(Glibc)
import Glibc
#endif

/// Puts a device filter program in force on a cgroup v2 directory. The kernel one is the
/// default; tests substitute a recorder (fake trees are not cgroup2 filesystems).
public protocol DeviceFilterAttacher: Sendable {
    /// Replaces the device programs attached to `directory` with `program`.
    func attach(_ program: [BPFInstruction], license: String, toCgroup directory: String) throws(CgroupError)
}

/// Loads the program with bpf(BPF_PROG_LOAD), attaches it with BPF_F_ALLOW_MULTI and only then
/// detaches the programs that were there (an earlier apply), so the cgroup is never without a
/// filter; while both are attached, a request must pass both.
public struct KernelDeviceFilterAttacher: DeviceFilterAttacher {
    public init() {}

    public func attach(_ program: [BPFInstruction], license: String, toCgroup directory: String) throws(CgroupError) {
        let cgroupFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard cgroupFD >= 0 else { throw .system("opening \(directory) to attach the device filter", errno: errno) }
        defer { close(cgroupFD) }

        let previous = try attachedPrograms(cgroupFD, directory: directory)
        let programFD = try load(program, license: license)
        defer { close(programFD) }
        guard berth_bpf_attach_device_filter(cgroupFD, programFD) == 0 else {
            throw .system("attaching the device filter to \(directory)", errno: errno)
        }
        for id in previous {
            let oldFD = berth_bpf_prog_fd_by_id(id)
            guard oldFD >= 0 else { continue }  // detached meanwhile
            defer { close(oldFD) }
            if berth_bpf_detach_device_filter(cgroupFD, oldFD) != 0 && errno != ENOENT {
                throw .system("detaching the previous device filter (program \(id)) from \(directory)", errno: errno)
            }
        }
    }

    /// Ids of the device programs attached to the cgroup itself.
    public func attachedPrograms(_ cgroupFD: Int32, directory: String) throws(CgroupError) -> [UInt32] {
        var ids = [UInt32](repeating: 0, count: 64)
        var count = UInt32(ids.count)
        let rc = ids.withUnsafeMutableBufferPointer { berth_bpf_query_device_filters(cgroupFD, $0.baseAddress, &count) }
        guard rc == 0 else {
            throw .system("querying the device filters of \(directory)", errno: errno)
        }
        return Array(ids.prefix(Int(min(count, UInt32(ids.count)))))
    }

    /// BPF_PROG_LOAD; on failure, loads again with a log buffer to report the verifier's reason.
    func load(_ program: [BPFInstruction], license: String) throws(CgroupError) -> Int32 {
        let bytes = program.flatMap(\.bytes)
        let count = UInt32(program.count)
        let fd = bytes.withUnsafeBytes { berth_bpf_load_device_filter($0.baseAddress, count, license, nil, 0) }
        if fd >= 0 { return fd }
        let number = errno
        var log = [CChar](repeating: 0, count: 64 * 1024)
        let retry = bytes.withUnsafeBytes { insns in
            log.withUnsafeMutableBufferPointer { berth_bpf_load_device_filter(insns.baseAddress, count, license, $0.baseAddress, UInt32($0.count)) }
        }
        if retry >= 0 { return retry }
        let verifier = String(decoding: log.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).trimmed
        let reason = verifier.isEmpty ? "" : " (verifier: \(verifier.split(separator: "\n").suffix(3).joined(separator: "; ")))"
        throw CgroupError(number == ENOENT ? .notFound : .system,
                          "loading the device filter (\(program.count) instructions): \(String(cString: strerror(number)))\(reason)",
                          errno: number)
    }
}
