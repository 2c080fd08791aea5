import BerthAPI
import FoundationEssentials
import Glibc

/// The files berthd itself owns: its roots, the pid file and the engine ID.
enum DaemonFiles {
    static func read(_ path: String) -> String? { HostFacts.readText(path) }

    /// `mkdir -p`, then `mode` on the last component (dockerd creates its roots 0711 so that
    /// containers' users can reach their own files without listing anyone else's).
    static func makeRoot(_ path: String, mode: mode_t) throws(UsageError) {
        var current = ""
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw UsageError(message: "cannot create \(current): \(String(cString: strerror(errno)))")
            }
        }
        guard chmod(path, mode) == 0 else {
            throw UsageError(message: "cannot set mode of \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Write-then-rename, so a reader never sees half a file.
    static func writeAtomically(_ path: String, _ text: String, mode: mode_t = 0o644) throws(UsageError) {
        let temp = path + ".tmp-\(getpid())"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw UsageError(message: "cannot write \(path): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == bytes.count, rename(temp, path) == 0 else {
            unlink(temp)
            throw UsageError(message: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// dockerd's pidfile.Write: refuses while the recorded process is alive.
    static func writePidFile(_ path: String) throws(UsageError) {
        if let text = read(path), let pid = pid_t(text.filter { !$0.isWhitespace }), pid > 0,
           pid != getpid(), kill(pid, 0) == 0 || errno == EPERM {
            throw UsageError(message: "pid file found, ensure berthd is not running or delete \(path)")
        }
        let parent = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        if !parent.isEmpty { try makeRoot(parent, mode: 0o711) }
        try writeAtomically(path, "\(getpid())")
    }

    /// The daemon's stable identity (`/info` ID), created on first start as dockerd does.
    static func engineID(dataRoot: String) throws(UsageError) -> String {
        let path = dataRoot + "/engine-id"
        if let text = read(path) {
            let id = text.filter { !$0.isWhitespace }
            if !id.isEmpty { return id }
        }
        let id = UUID().uuidString.lowercased()
        try writeAtomically(path, id, mode: 0o600)
        return id
    }
}
