import BerthAPI
import BerthOS
import Glibc

/// berthd's helpers (berth-runtime, berth-monitor) run from read-only bind mounts of their
/// binaries under `<exec-root>/bin`. A container that reaches a helper's /proc/PID/exe (the
/// CVE-2019-5736 class) then holds a file on a read-only mount and cannot rewrite the host's
/// binary. The helpers check this themselves and re-execute from a sealed copy when run from a
/// writable place (berth_sealed_exe.h); the mounts spare them that re-exec on every call.
enum SealedHelpers {
    /// The path to run `binary` from: its read-only bind in `directory`, or the binary itself
    /// (which then seals itself) when the mount cannot be made.
    static func stage(_ binary: String, in directory: String, log: APILog) -> String {
        guard FileSystem.exists(binary) else { return binary }
        let name = String(binary.split(separator: "/").last ?? "helper")
        let target = directory + "/" + name
        do throws(SystemError) {
            try FileSystem.makeDirectories(directory, mode: 0o711)
            // Mounts left by an earlier berthd go: the binary may have been upgraded since.
            BindMount.unmountAll(target)
            let fd = open(target, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0o755)
            guard fd >= 0 else { throw SystemError("create \(target)") }
            close(fd)
            try BindMount.bindReadOnly(binary, onto: target)
            return target
        } catch {
            log.warning("running \(binary) from where it is (it seals itself on each run): \(error.message)")
            return binary
        }
    }
}
