import Glibc

/// Free space of a filesystem, for refusing work that would fill it (an archive whose
/// entries claim more than the disk holds) before writing anything.
public enum DiskSpace {
    /// Bytes that unprivileged writers may still use on the filesystem holding `path`
    /// (statvfs' f_bavail): root's reserved blocks are left for recovery.
    public static func available(at path: String) throws(SystemError) -> Int64 {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { throw SystemError("statvfs \(path)") }
        let (bytes, overflow) = Int64(s.f_bavail).multipliedReportingOverflow(by: Int64(s.f_frsize))
        return overflow ? Int64.max : bytes
    }

    /// `bytes` for a person: "8.0 GiB", "512 MiB", "10 KiB".
    public static func describe(_ bytes: Int64) -> String {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(bytes)
        var i = 0
        while value >= 1024 && i < units.count - 1 { value /= 1024; i += 1 }
        if i == 0 { return "\(bytes) bytes" }
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? "\(Int(rounded)) \(units[i])" : "\(rounded) \(units[i])"
    }
}
