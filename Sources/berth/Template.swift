import BerthClient

/// The part of Go's text/template that `--format` uses in practice, evaluated over JSON:
/// `{{.A.B}}`, `{{json .X}}`, `{{index .Labels "k"}}`, `{{join .L ","}}`, pipes (`{{.X | upper}}`),
/// `{{if}}`/`{{else}}`/`{{range}}`/`{{with}}`, `{{range $k, $v := .M}}`, and `{{-`/`-}}` trimming.
struct Template {
    indirect enum Node {
        case text(String)
        case action(Pipeline)
        case conditional(kind: String, Pipeline, then: [Node], otherwise: [Node])
        case range(keyVar: String?, valueVar: String?, Pipeline, body: [Node], otherwise: [Node])
    }

    struct Pipeline {
        var commands: [[Operand]]
    }

    indirect enum Operand {
        case field(base: String?, path: [String])  // base nil = dot, "$x" = variable
        case string(String)
        case number(String)
        case boolean(Bool)
        case function(String)
        case nested(Pipeline)
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    let nodes: [Node]

    init(_ source: String) throws(Failure) {
        var tokens = try Self.tokenize(source)
        tokens.reverse()
        var parser = Parser(tokens: tokens)
        let (nodes, end) = try parser.parseList()
        if let end { throw Failure(description: "template: unexpected {{\(end)}}") }
        self.nodes = nodes
    }

    // MARK: Lexing into text and actions

    enum Token { case text(String), action(String) }

    static func tokenize(_ source: String) throws(Failure) -> [Token] {
        var tokens: [Token] = []
        var rest = Substring(source)
        while let open = rest.firstRange(of: "{{") {
            var text = String(rest[..<open.lowerBound])
            var inner = rest[open.upperBound...]
            guard let close = inner.firstRange(of: "}}") else { throw Failure(description: "template: unclosed action") }
            var body = inner[..<close.lowerBound]
            inner = inner[close.upperBound...]
            if body.hasPrefix("- ") || body == "-" {
                body = body.dropFirst()
                while text.last?.isWhitespace == true { text.removeLast() }
            }
            var trimAfter = false
            if body.hasSuffix(" -") {
                body = body.dropLast()
                trimAfter = true
            }
            if !text.isEmpty { tokens.append(.text(text)) }
            let action = String(body).trimming(" \t\n")
            if !action.hasPrefix("/*") { tokens.append(.action(action)) }
            rest = inner
            if trimAfter { rest = rest.drop(while: { $0.isWhitespace }) }
        }
        if !rest.isEmpty { tokens.append(.text(String(rest))) }
        return tokens
    }

    struct Parser {
        var tokens: [Token]  // reversed: popLast is the next one

        /// Nodes up to a closing keyword (`end`, `else`), which is returned.
        mutating func parseList() throws(Failure) -> ([Node], String?) {
            var nodes: [Node] = []
            while let token = tokens.popLast() {
                switch token {
                case .text(let t): nodes.append(.text(t))
                case .action(let a):
                    let words = a.split(separator: " ", maxSplits: 1).map(String.init)
                    switch words.first ?? "" {
                    case "end", "else":
                        return (nodes, a)
                    case "if", "with":
                        let pipe = try Self.parsePipeline(words.count > 1 ? words[1] : "")
                        let (then, end) = try parseList()
                        var otherwise: [Node] = []
                        if let end, end.hasPrefix("else") {
                            let rest = end.dropFirst(4).trimming(" ")
                            if rest.hasPrefix("if ") {
                                // `{{else if x}}` is an `if` nested in the else branch sharing its `end`.
                                tokens.append(.action("end"))
                                tokens.append(.action(rest))
                                let (nested, _) = try parseList()
                                otherwise = nested
                                _ = try expectEnd()
                            } else {
                                otherwise = try expectEnd()
                            }
                        } else if end != "end" {
                            throw Failure(description: "template: missing {{end}}")
                        }
                        nodes.append(.conditional(kind: words[0], pipe, then: then, otherwise: otherwise))
                    case "range":
                        var spec = words.count > 1 ? words[1] : ""
                        var keyVar: String?, valueVar: String?
                        if let assign = spec.firstRange(of: ":=") {
                            let vars = spec[..<assign.lowerBound].split(separator: ",").map { $0.trimming(" ") }
                            if vars.count == 2 { keyVar = vars[0]; valueVar = vars[1] } else { valueVar = vars.first }
                            spec = String(spec[assign.upperBound...])
                        }
                        let pipe = try Self.parsePipeline(spec)
                        let (body, end) = try parseList()
                        var otherwise: [Node] = []
                        if end == "else" { otherwise = try expectEnd() } else if end != "end" {
                            throw Failure(description: "template: missing {{end}}")
                        }
                        nodes.append(.range(keyVar: keyVar, valueVar: valueVar, pipe, body: body, otherwise: otherwise))
                    default:
                        nodes.append(.action(try Self.parsePipeline(a)))
                    }
                }
            }
            return (nodes, nil)
        }

        mutating func expectEnd() throws(Failure) -> [Node] {
            let (nodes, end) = try parseList()
            guard end == "end" else { throw Failure(description: "template: missing {{end}}") }
            return nodes
        }

        static func parsePipeline(_ text: String) throws(Failure) -> Pipeline {
            var operands = try lexOperands(Array(text))
            return Pipeline(commands: split(&operands))
        }

        /// Splits operand tokens at `|`.
        static func split(_ items: inout [Operand?]) -> [[Operand]] {
            var commands: [[Operand]] = [[]]
            for item in items {
                if let item { commands[commands.count - 1].append(item) } else { commands.append([]) }
            }
            return commands.filter { !$0.isEmpty }
        }

        /// Operands with nil standing for `|`.
        static func lexOperands(_ chars: [Character]) throws(Failure) -> [Operand?] {
            var out: [Operand?] = []
            var i = 0
            while i < chars.count {
                let c = chars[i]
                if c.isWhitespace { i += 1; continue }
                if c == "|" { out.append(nil); i += 1; continue }
                if c == "\"" || c == "`" {
                    var s = ""
                    i += 1
                    while i < chars.count, chars[i] != c {
                        if c == "\"", chars[i] == "\\", i + 1 < chars.count {
                            i += 1
                            switch chars[i] {
                            case "n": s.append("\n")
                            case "t": s.append("\t")
                            default: s.append(chars[i])
                            }
                        } else {
                            s.append(chars[i])
                        }
                        i += 1
                    }
                    guard i < chars.count else { throw Failure(description: "template: unterminated quoted string") }
                    i += 1
                    out.append(.string(s))
                    continue
                }
                if c == "(" {
                    var depth = 0, j = i
                    repeat {
                        if chars[j] == "(" { depth += 1 } else if chars[j] == ")" { depth -= 1 }
                        j += 1
                    } while depth > 0 && j < chars.count
                    guard depth == 0 else { throw Failure(description: "template: unclosed left paren") }
                    var inner = try lexOperands(Array(chars[(i + 1)..<(j - 1)]))
                    out.append(.nested(Pipeline(commands: split(&inner))))
                    i = j
                    continue
                }
                var j = i
                while j < chars.count, !chars[j].isWhitespace, chars[j] != "|", chars[j] != "(", chars[j] != ")" { j += 1 }
                let word = String(chars[i..<j])
                i = j
                if word.hasPrefix(".") || word.hasPrefix("$") {
                    var parts = word.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
                    let base: String? = word.hasPrefix("$") ? parts.removeFirst() : { parts.removeFirst(); return nil }()
                    out.append(.field(base: base, path: parts.filter { !$0.isEmpty }))
                } else if word == "true" || word == "false" {
                    out.append(.boolean(word == "true"))
                } else if let first = word.first, first.isNumber || first == "-" {
                    out.append(.number(word))
                } else {
                    out.append(.function(word))
                }
            }
            return out
        }
    }

    // MARK: Evaluation

    /// Renders the template over `data`.
    func render(_ data: JSON) throws(Failure) -> String {
        var out = ""
        var scope = Scope(dot: data, variables: ["$": data])
        try run(nodes, &scope, &out)
        return out
    }

    struct Scope {
        var dot: JSON
        var variables: [String: JSON]
    }

    /// A value in evaluation: JSON, or nothing (a missing key prints `<no value>`).
    enum Value {
        case json(JSON)
        case missing

        var json: JSON { if case .json(let j) = self { return j }; return .null }
    }

    private func run(_ nodes: [Node], _ scope: inout Scope, _ out: inout String) throws(Failure) {
        for node in nodes {
            switch node {
            case .text(let t): out += t
            case .action(let p): out += Self.display(try eval(p, scope))
            case .conditional(let kind, let p, let then, let otherwise):
                let v = try eval(p, scope)
                if Self.truthy(v) {
                    var inner = scope
                    if kind == "with" { inner.dot = v.json }
                    try run(then, &inner, &out)
                } else {
                    var inner = scope
                    try run(otherwise, &inner, &out)
                }
            case .range(let keyVar, let valueVar, let p, let body, let otherwise):
                var items: [(JSON, JSON)] = []
                switch try eval(p, scope).json {
                case .array(let a): items = a.enumerated().map { (.int($0.offset), $0.element) }
                case .object(let o): items = o.keys.sorted().map { (.string($0), o[$0]!) }
                default: break
                }
                var inner = scope
                if items.isEmpty { try run(otherwise, &inner, &out) }
                for (k, v) in items {
                    inner.dot = v
                    if let keyVar { inner.variables[keyVar] = k }
                    if let valueVar { inner.variables[valueVar] = v }
                    try run(body, &inner, &out)
                }
            }
        }
    }

    private func eval(_ pipeline: Pipeline, _ scope: Scope) throws(Failure) -> Value {
        var previous: Value?
        for command in pipeline.commands {
            previous = try evalCommand(command, scope, piped: previous)
        }
        return previous ?? .missing
    }

    private func evalOperand(_ operand: Operand, _ scope: Scope) throws(Failure) -> Value {
        switch operand {
        case .string(let s): return .json(.string(s))
        case .number(let n): return .json(.number(n))
        case .boolean(let b): return .json(.bool(b))
        case .nested(let p): return try eval(p, scope)
        case .function(let name): return try call(name, [], scope)
        case .field(let base, let path):
            var current: JSON
            if let base {
                guard let v = scope.variables[base] else { throw Failure(description: "template: undefined variable \"\(base)\"") }
                current = v
            } else {
                current = scope.dot
            }
            for key in path {
                switch current {
                case .object(let o):
                    guard let next = o[key] else { return .missing }
                    current = next
                case .null: return .missing
                default:
                    throw Failure(description: "template: can't evaluate field \(key) in type \(Self.typeName(current))")
                }
            }
            return .json(current)
        }
    }

    private func evalCommand(_ command: [Operand], _ scope: Scope, piped: Value?) throws(Failure) -> Value {
        guard let head = command.first else { return .missing }
        var args: [Value] = []
        for operand in command.dropFirst() { args.append(try evalOperand(operand, scope)) }
        if let piped { args.append(piped) }
        switch head {
        case .function(let name):
            return try call(name, args, scope)
        case .field(nil, let path) where path.last == "Label" && args.count == 1:
            // The ps/images contexts' `.Label "key"` method over their "k=v,k2=v2" Labels text.
            let labels = try evalOperand(.field(base: nil, path: path.dropLast() + ["Labels"]), scope).json.string ?? ""
            let key = Self.display(args[0])
            for pair in labels.split(separator: ",") where pair.hasPrefix(key + "=") {
                return .json(.string(String(pair.dropFirst(key.count + 1))))
            }
            return .json(.string(""))
        default:
            guard args.isEmpty else { throw Failure(description: "template: can't give argument to non-function") }
            return try evalOperand(head, scope)
        }
    }

    private func call(_ name: String, _ args: [Value], _ scope: Scope) throws(Failure) -> Value {
        func arity(_ n: Int) throws(Failure) {
            guard args.count == n else {
                throw Failure(description: "template: wrong number of args for \(name): want \(n) got \(args.count)")
            }
        }
        func text(_ i: Int) -> String { Self.display(args[i]) }
        switch name {
        case "json":
            try arity(1)
            return .json(.string(args[0].json.compact))
        case "index":
            guard var current = args.first?.json else { throw Failure(description: "template: wrong number of args for index") }
            for key in args.dropFirst() {
                switch (current, key.json) {
                case (.object(let o), .string(let k)): guard let v = o[k] else { return .missing }; current = v
                case (.array(let a), .number(let n)):
                    guard let i = Int(n), a.indices.contains(i) else { throw Failure(description: "template: index out of range: \(n)") }
                    current = a[i]
                case (.null, _): return .missing
                default: throw Failure(description: "template: can't index item of type \(Self.typeName(current))")
                }
            }
            return .json(current)
        case "join":
            try arity(2)
            let list = args[0].json.array?.map { Self.display(.json($0)) } ?? []
            return .json(.string(list.joined(separator: text(1))))
        case "split":
            try arity(2)
            return .json(.strings(text(0).split(separator: text(1), omittingEmptySubsequences: false).map(String.init)))
        case "upper": try arity(1); return .json(.string(text(0).uppercased()))
        case "lower": try arity(1); return .json(.string(text(0).lowercased()))
        case "title":
            try arity(1)
            return .json(.string(text(0).split(separator: " ", omittingEmptySubsequences: false)
                .map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined(separator: " ")))
        case "len":
            try arity(1)
            switch args[0].json {
            case .array(let a): return .json(.int(a.count))
            case .object(let o): return .json(.int(o.keys.count))
            case .string(let s): return .json(.int(s.utf8.count))
            default: throw Failure(description: "template: len of \(Self.typeName(args[0].json))")
            }
        case "truncate":
            try arity(2)
            let n = Int(text(1)) ?? 0
            return .json(.string(String(text(0).prefix(n))))
        case "pad":
            try arity(3)
            let l = Int(text(1)) ?? 0, r = Int(text(2)) ?? 0
            return .json(.string(String(repeating: " ", count: l) + text(0) + String(repeating: " ", count: r)))
        case "print": return .json(.string(args.indices.map(text).joined()))
        case "println": return .json(.string(args.indices.map(text).joined(separator: " ") + "\n"))
        case "printf":
            guard !args.isEmpty else { throw Failure(description: "template: wrong number of args for printf") }
            var out = "", rest = args.dropFirst().makeIterator()
            var chars = text(0).makeIterator()
            while let c = chars.next() {
                guard c == "%" else { out.append(c); continue }
                guard let verb = chars.next() else { break }
                if verb == "%" { out.append("%") } else { out += rest.next().map(Self.display) ?? "%!\(verb)(MISSING)" }
            }
            return .json(.string(out))
        case "eq", "ne":
            guard args.count >= 2 else { throw Failure(description: "template: wrong number of args for \(name)") }
            let equal = args.dropFirst().contains { Self.display($0) == text(0) }
            return .json(.bool(name == "eq" ? equal : !equal))
        case "not": try arity(1); return .json(.bool(!Self.truthy(args[0])))
        case "and": return args.first(where: { !Self.truthy($0) }) ?? args.last ?? .missing
        case "or": return args.first(where: Self.truthy) ?? args.last ?? .missing
        default:
            throw Failure(description: "template: function \"\(name)\" not defined")
        }
    }

    static func truthy(_ v: Value) -> Bool {
        switch v.json {
        case .null: false
        case .bool(let b): b
        case .number(let n): Double(n) != 0
        case .string(let s): !s.isEmpty
        case .array(let a): !a.isEmpty
        case .object(let o): !o.isEmpty
        }
    }

    static func typeName(_ j: JSON) -> String {
        switch j {
        case .null: "<nil>"
        case .bool: "bool"
        case .number: "float64"
        case .string: "string"
        case .array: "[]interface {}"
        case .object: "map[string]interface {}"
        }
    }

    /// How Go's fmt prints a value: slices as `[a b]`, maps as `map[k:v]` with sorted keys.
    static func display(_ v: Value) -> String {
        guard case .json(let j) = v else { return "<no value>" }
        switch j {
        case .null: return "<nil>"
        case .bool(let b): return b ? "true" : "false"
        case .number(let n): return n
        case .string(let s): return s
        case .array(let a): return "[" + a.map { display(.json($0)) }.joined(separator: " ") + "]"
        case .object(let o): return "map[" + o.keys.sorted().map { "\($0):\(display(.json(o[$0]!)))" }.joined(separator: " ") + "]"
        }
    }
}

extension StringProtocol {
    /// The text without leading and trailing characters from `set`.
    func trimming(_ set: String) -> String {
        String(drop(while: { set.contains($0) }).reversed().drop(while: { set.contains($0) }).reversed())
    }
}
