/// runc's flag syntax (Go's flag package through urfave/cli): `-name` and `--name` alike,
/// `--name value` or `--name=value`, boolean flags as `--name` or `--name=false`, flags
/// before the command or after it, and `--` ending the flags.
///
/// Hand-written rather than swift-argument-parser: that library models neither single-dash
/// long names nor `=false` booleans, and its reflection-built command tree was 45 % of the
/// time of a `state` call, a command containerd runs several times for every container.
struct FlagSpec: Sendable {
    let names: [String]        // long name first, then aliases ("bundle", "b")
    let takesValue: Bool
    let help: String

    /// "  --bundle, -b value        path to the bundle", for help texts.
    var helpLine: String {
        let shown = names.map { $0.count == 1 ? "-\($0)" : "--\($0)" }.joined(separator: ", ") + (takesValue ? " value" : "")
        return "  " + shown + String(repeating: " ", count: max(2, 28 - shown.count)) + help + "\n"
    }

    static func value(_ names: String..., help: String) -> FlagSpec { FlagSpec(names: names, takesValue: true, help: help) }
    static func bool(_ names: String..., help: String) -> FlagSpec { FlagSpec(names: names, takesValue: false, help: help) }
}

struct UsageError: Error {
    let message: String
}

/// Flags and positional arguments of one command line.
struct ParsedFlags: Sendable {
    private(set) var values: [String: [String]] = [:]
    private(set) var positionals: [String] = []

    /// Parses `args` against `specs`. With `stopAtFirstPositional` everything from the first
    /// positional on is positional (`exec ID sh -c ...`), as Go's flag package does.
    init(_ args: some Sequence<String>, specs: [FlagSpec], stopAtFirstPositional: Bool) throws(UsageError) {
        var byName: [String: FlagSpec] = [:]
        for spec in specs { for name in spec.names { byName[name] = spec } }
        var iterator = args.makeIterator()
        var flagsDone = false
        while let arg = iterator.next() {
            if flagsDone || arg == "-" || !arg.hasPrefix("-") {
                positionals.append(arg)
                if stopAtFirstPositional { flagsDone = true }
                continue
            }
            if arg == "--" {
                flagsDone = true
                continue
            }
            let body = arg.drop { $0 == "-" }
            let name: String
            var inline: String?
            if let eq = body.firstIndex(of: "=") {
                name = String(body[..<eq])
                inline = String(body[body.index(after: eq)...])
            } else {
                name = String(body)
            }
            guard let spec = byName[name] else { throw UsageError(message: "flag provided but not defined: -\(name)") }
            let key = spec.names[0]
            if spec.takesValue {
                guard let value = inline ?? iterator.next() else {
                    throw UsageError(message: "flag needs an argument: -\(name)")
                }
                values[key, default: []].append(value)
            } else {
                switch inline?.lowercased() {
                case nil, "true", "1", "t": values[key] = ["true"]
                case "false", "0", "f": values[key] = ["false"]
                default: throw UsageError(message: "invalid boolean value \"\(inline!)\" for -\(name)")
                }
            }
        }
    }

    func bool(_ name: String) -> Bool { values[name]?.last == "true" }
    func string(_ name: String) -> String? { values[name]?.last }
    func strings(_ name: String) -> [String] { values[name] ?? [] }

    func int<T: FixedWidthInteger>(_ name: String, as: T.Type = T.self) throws(UsageError) -> T? {
        guard let text = string(name) else { return nil }
        guard let n = T(text) else { throw UsageError(message: "invalid value \"\(text)\" for -\(name): not a number") }
        return n
    }

    /// The positional arguments, which must be exactly `names`.
    func exactly(_ names: String...) throws(UsageError) -> [String] {
        guard positionals.count == names.count else {
            let want = names.map { "<\($0)>" }.joined(separator: " ")
            throw UsageError(message: "expected \(want), got \(positionals.count) argument(s)")
        }
        return positionals
    }
}

/// One command of the command line: its flags and what it does with them.
struct CommandSpec: Sendable {
    let name: String
    let usage: String
    let summary: String
    var flags: [FlagSpec]
    var stopAtFirstPositional = false
    let run: @Sendable (ParsedFlags, Globals) throws -> Int32

    var helpText: String {
        var text = "Usage: berth-runtime [global options] \(name) \(usage)\n\n\(summary)\n"
        if !flags.isEmpty {
            text += "\nOptions:\n" + flags.map(\.helpLine).joined()
        }
        return text
    }
}

/// Options that apply to every command (runc's global flags).
struct Globals: Sendable {
    var root = "/run/berth-runtime"
    var log: String?
    var logFormat = "text"
    var debug = false
    var preservePlaceholders: UInt64 = 0

    static let specs: [FlagSpec] = [
        .value("root", help: "directory for container state (default /run/berth-runtime)"),
        .value("log", help: "write log records and errors to this file"),
        .value("log-format", help: "text or json"),
        .bool("debug", help: "log debug output"),
        .bool("systemd-cgroup", help: "accepted for runc compatibility (slice:prefix:name paths are honoured)"),
        .value("criu", help: "accepted for runc compatibility"),
        .value("rootless", help: "accepted for runc compatibility"),
        .bool("help", "h", help: "show help"),
        .bool("version", "v", help: "print the version"),
    ]
}
