import BerthOS
import BerthAPI
import Glibc

/// One line per event on stderr: logfmt (`time=... level=info msg="..." key=value`) or JSON
/// with `--log-format json`. Each line is one write(2), so lines from several threads never mix.
enum DaemonLog {
    static func make(format: String, level: String) -> APILog {
        let minimum: APILog.Level = switch level {
        case "debug": .debug
        case "warn", "warning": .warning
        case "error": .error
        default: .info
        }
        let json = format == "json"
        return APILog(minimumLevel: minimum) { level, message, fields in
            emit(json ? jsonLine(level, message, fields) : textLine(level, message, fields))
        }
    }

    static func textLine(_ level: APILog.Level, _ message: String, _ fields: APILog.Fields) -> String {
        var line = "time=\(Timestamp.now()) level=\(level) msg=\(quoted(message))"
        for (key, value) in fields { line += " \(key)=\(logfmtValue(value))" }
        return line + "\n"
    }

    static func jsonLine(_ level: APILog.Level, _ message: String, _ fields: APILog.Fields) -> String {
        var line = "{\"time\":\(jsonString(Timestamp.now())),\"level\":\(jsonString(level.description)),\"msg\":\(jsonString(message))"
        for (key, value) in fields { line += ",\(jsonString(key)):\(jsonString(value))" }
        return line + "}\n"
    }

    /// A line for a person before logging is configured (bad flags) or after it failed.
    static func fatal(_ message: String) {
        emit("berthd: \(message)\n")
    }

    private static func emit(_ line: String) {
        var bytes = Array(line.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            offset += n
        }
    }

    private static func logfmtValue(_ value: String) -> String {
        let plain = !value.isEmpty && value.unicodeScalars.allSatisfy { $0.value > 0x20 && $0 != "\"" && $0 != "=" && $0 != "\\" && $0.value < 0x7f }
        return plain ? value : quoted(value)
    }

    /// logfmt quotes a value as a JSON string does.
    private static func quoted(_ text: String) -> String { jsonString(text) }

    private static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
