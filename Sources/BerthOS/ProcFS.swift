import Glibc

/// What /proc says about a process.
public enum ProcFS {
    /// Start time (field 22 of /proc/PID/stat, clock ticks since boot) and state letter.
    /// Together with the pid it identifies a process across pid reuse.
    public static func stat(_ pid: Int32) -> (state: Character, startTime: UInt64)? {
        guard let text = try? FileSystem.readString("/proc/\(pid)/stat"),
              let close = text.lastIndex(of: ")") else { return nil }
        // The command name may contain spaces and parentheses: fields follow the last ")".
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let state = fields[0].first, let start = UInt64(fields[19]) else { return nil }
        return (state, start)
    }

    /// True when pid is the same live (not zombie) process that started at startTime.
    public static func isAlive(_ pid: Int32, startTime: UInt64) -> Bool {
        guard pid > 0, let s = stat(pid) else { return false }
        return s.startTime == startTime && s.state != "Z" && s.state != "X"
    }
}
