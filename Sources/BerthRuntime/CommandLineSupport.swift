import BerthOS
import FoundationEssentials

// What the command line needs from the layers below, so it imports no OS module itself.

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
