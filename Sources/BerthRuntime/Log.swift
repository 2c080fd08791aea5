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
            let object = ["level": level, "msg": message, "time": Runtime.timestamp()]
            line = ((try? e.encode(object)).map { String(decoding: $0, as: UTF8.self) } ?? "{}") + "\n"
        case .text:
            let quoted = message.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"")
            line = "time=\"\(Runtime.timestamp())\" level=\(level) msg=\"\(quoted)\"\n"
        }
        _ = line.withCString { Glibc.write(fd, $0, strlen($0)) }
    }
}

extension Log {
    /// True when log lines go to a file, so errors must also be printed on stderr.
    public static var writesElsewhere: Bool { fd != 2 }
}

/// Signal names and numbers as `kill` takes them.
public enum RuntimeSignal {
    public static func parse(_ text: String) -> Int32? { BerthOS.Signal.parse(text) }
}

/// File and subprocess helpers for the command line, which imports no OS module itself.
public enum RuntimeCommandOutput {
    public static func capture(_ path: String, _ argv: [String]) throws -> String {
        String(decoding: try Command.output(path: path, argv: argv), as: UTF8.self)
    }
    public static func read(_ path: String) throws -> Data { try FileSystem.readData(path) }
    public static func write(_ path: String, _ data: Data) throws { try FileSystem.writeAtomically(path, data) }
}

/// JSON as Go's `json.MarshalIndent(v, "", "  ")` writes it (`"key": value`), which is what
/// runc prints and what scripts grep for; Foundation's pretty printer writes `"key" : value`.
public func goStyleIndent(_ compact: String) -> String {
    var out = ""
    var depth = 0
    var inString = false
    var escaped = false
    var chars = Array(compact)
    var i = 0
    func newline() { out += "\n" + String(repeating: "  ", count: depth) }
    while i < chars.count {
        let c = chars[i]
        if inString {
            out.append(c)
            if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { inString = false }
        } else {
            switch c {
            case "\"": inString = true; out.append(c)
            case "{", "[":
                // Empty containers stay on one line.
                if i + 1 < chars.count, chars[i + 1] == (c == "{" ? "}" : "]") {
                    out.append(c); out.append(chars[i + 1]); i += 1
                } else {
                    out.append(c); depth += 1; newline()
                }
            case "}", "]": depth -= 1; newline(); out.append(c)
            case ",": out.append(c); newline()
            case ":": out += ": "
            default: out.append(c)
            }
        }
        i += 1
    }
    chars.removeAll()
    return out
}
