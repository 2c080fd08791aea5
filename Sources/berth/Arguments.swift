/// One command-line option, docker (pflag) style.
struct Option: Sendable {
    enum Kind { case flag, value, list }
    let long: String
    let short: Character?
    let kind: Kind

    init(_ long: String, _ short: Character? = nil, _ kind: Kind = .flag) {
        self.long = long
        self.short = short
        self.kind = kind
    }
}

/// An error in how the command was called: docker prints it with a `--help` hint.
struct UsageError: Error, Equatable {
    let message: String
}

/// Parsed options (by long name) and positional arguments.
struct Arguments: Equatable {
    var values: [String: [String]] = [:]
    var positionals: [String] = []

    func has(_ long: String) -> Bool { values[long] != nil }

    /// A boolean flag: its last value (`--rm`, `--rm=false`).
    func flag(_ long: String) -> Bool { values[long]?.last.map { $0 == "true" } ?? false }

    func value(_ long: String) -> String? { values[long]?.last }

    func list(_ long: String) -> [String] { values[long] ?? [] }

    /// Parses `args` as pflag does: `--name=v`, `--name v`, `-abc` clusters of booleans, `-ev`,
    /// `-e=v`, `-e v`, `--` to end options. With `interspersed` false (run, exec) options end at
    /// the first positional, so the container's own command keeps its flags.
    static func parse(_ args: [String], options: [Option], interspersed: Bool = true) throws(UsageError) -> Arguments {
        var result = Arguments()
        var byLong: [String: Option] = [:], byShort: [Character: Option] = [:]
        for o in options {
            byLong[o.long] = o
            if let s = o.short { byShort[s] = o }
        }
        var i = 0
        func set(_ o: Option, _ v: String) {
            if o.kind == .list {
                result.values[o.long, default: []].append(v)
            } else {
                result.values[o.long] = [v]
            }
        }
        func boolValue(_ text: String, _ name: String) throws(UsageError) -> String {
            switch text.lowercased() {
            case "1", "t", "true": return "true"
            case "0", "f", "false": return "false"
            default: throw UsageError(message: "invalid argument \"\(text)\" for \"\(name)\" flag: strconv.ParseBool: parsing \"\(text)\": invalid syntax")
            }
        }
        while i < args.count {
            let arg = args[i]
            i += 1
            if arg == "--" {
                result.positionals += args[i...]
                break
            }
            if arg.hasPrefix("--") {
                let body = arg.dropFirst(2)
                let name: String, inline: String?
                if let eq = body.firstIndex(of: "=") {
                    name = String(body[..<eq])
                    inline = String(body[body.index(after: eq)...])
                } else {
                    name = String(body)
                    inline = nil
                }
                guard let o = byLong[name] else { throw UsageError(message: "unknown flag: --\(name)") }
                if o.kind == .flag {
                    set(o, try inline.map { v throws(UsageError) in try boolValue(v, "--\(name)") } ?? "true")
                } else if let inline {
                    set(o, inline)
                } else {
                    guard i < args.count else { throw UsageError(message: "flag needs an argument: --\(name)") }
                    set(o, args[i])
                    i += 1
                }
            } else if arg.hasPrefix("-") && arg.count > 1 {
                var chars = Substring(arg.dropFirst())
                while let c = chars.first {
                    chars = chars.dropFirst()
                    guard let o = byShort[c] else { throw UsageError(message: "unknown shorthand flag: '\(c)' in \(arg)") }
                    if o.kind == .flag {
                        if chars.hasPrefix("=") {
                            set(o, try boolValue(String(chars.dropFirst()), "-\(c)"))
                            break
                        }
                        set(o, "true")
                        continue
                    }
                    if chars.hasPrefix("=") { chars = chars.dropFirst() }
                    if !chars.isEmpty {
                        set(o, String(chars))
                    } else {
                        guard i < args.count else { throw UsageError(message: "flag needs an argument: '\(c)' in -\(c)") }
                        set(o, args[i])
                        i += 1
                    }
                    break
                }
            } else {
                result.positionals.append(arg)
                if !interspersed {
                    result.positionals += args[i...]
                    break
                }
            }
        }
        return result
    }
}
