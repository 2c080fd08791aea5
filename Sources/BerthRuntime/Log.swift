import BerthOS
import FoundationEssentials
import Glibc

/// runc-style logging: `--log FILE` and `--log-format text|json`. containerd reads the
/// JSON lines of a failed command to report its error.
public enum Log {
    public enum Format: String, Sendable { case text, json }

    nonisolated(unsafe) static var fd: Int32 = 2
    nonisolated(unsafe) static var format: Format = .text
    nonisolated(unsafe) public static var debugEnabled = false

    public static func configure(path: String?, format: Format, debug: Bool) {
        self.format = format
        debugEnabled = debug
        if let path, !path.isEmpty {
            let f = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            if f >= 0 { fd = f }
        }
    }

    public static func error(_ message: String) { write("error", message) }
    /// One plain line on stderr, for a person, besides the log file.
    public static func printError(_ message: String) {
        let line = "berth-runtime: \(message)\n"
        _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
    }
    public static func warning(_ message: String) { write("warning", message) }
    public static func debug(_ message: String) { if debugEnabled { write("debug", message) } }

    static func write(_ level: String, _ message: String) {
        let line: String
        switch format {
        case .json:
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let object = ["level": level, "msg": message, "time": Timestamp.now()]
            line = ((try? e.encode(object)).map { String(decoding: $0, as: UTF8.self) } ?? "{}") + "\n"
        case .text:
            let quoted = message.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"")
            line = "time=\"\(Timestamp.now())\" level=\(level) msg=\"\(quoted)\"\n"
        }
        _ = line.withCString { Glibc.write(fd, $0, strlen($0)) }
    }
}

extension Log {
    /// True when log lines go to a file, so errors must also be printed on stderr.
    public static var writesElsewhere: Bool { fd != 2 }
}
