import BerthClient
import Glibc

/// network create/ls/inspect/rm/prune/connect/disconnect, as docker's `network` commands.
enum NetworkCommands {
    static let all: [Command] = [create, ls, inspect, rm, prune, connect, disconnect,
                                 ls.named("network list"), rm.named("network remove")]

    static let create = Command(
        name: "network create", usage: "berth network create [OPTIONS] NETWORK", summary: "Create a network",
        options: [Option("driver", "d", .value), Option("opt", "o", .list), Option("label", nil, .list),
                  Option("internal"), Option("attachable"), Option("ingress"), Option("ipv4"), Option("ipv6"),
                  Option("scope", nil, .value), Option("config-only"), Option("config-from", nil, .value),
                  Option("ipam-driver", nil, .value), Option("subnet", nil, .list), Option("ip-range", nil, .list),
                  Option("gateway", nil, .list), Option("aux-address", nil, .list), Option("ipam-opt", nil, .list)],
        minArgs: 1, maxArgs: 1
    ) { cli, args in
        let answer = try cli.client().json("POST", "/networks/create", json: try createBody(args))
        cli.out((answer["Id"]?.string ?? "") + "\n")
        return 0
    }

    /// docker 28's `NetworkCreate` body: `--ipv4`/`--ipv6` only when given, IPAM always.
    static func createBody(_ args: Arguments) throws -> JSON {
        func map(_ flag: String) throws -> JSON {
            var m = JSONObject()
            for item in args.list(flag) {
                let (k, v) = ContainerConfig.split(item)
                if flag == "label" && k.trimming(" \t\n\r").isEmpty {
                    throw CLIError("invalid argument \"\(item)\" for \"--label\" flag: invalid label '\(item)': empty name")
                }
                m[k] = .string(v ?? "")
            }
            return .object(m)
        }
        let config = try ipamConfig(subnets: commaList(args.list("subnet")), ranges: commaList(args.list("ip-range")),
                                    gateways: commaList(args.list("gateway")), aux: args.list("aux-address").map(ContainerConfig.split))
        var body: [(String, JSON)] = [
            ("Name", .string(args.positionals[0])), ("Driver", .string(args.value("driver") ?? "bridge")),
            ("Scope", .string(args.value("scope") ?? "")),
        ]
        if args.has("ipv4") { body.append(("EnableIPv4", .bool(args.flag("ipv4")))) }
        if args.has("ipv6") { body.append(("EnableIPv6", .bool(args.flag("ipv6")))) }
        body += [
            ("IPAM", .object([("Driver", .string(args.value("ipam-driver") ?? "default")), ("Options", try map("ipam-opt")),
                              ("Config", .array(config))])),
            ("Internal", .bool(args.flag("internal"))), ("Attachable", .bool(args.flag("attachable"))),
            ("Ingress", .bool(args.flag("ingress"))), ("ConfigOnly", .bool(args.flag("config-only"))),
            ("ConfigFrom", args.value("config-from").map { .object([("Network", .string($0))]) } ?? .null),
            ("Options", try map("opt")), ("Labels", try map("label")),
        ]
        return .object(body)
    }

    /// docker's `createIPAMConfig`: each range, gateway and auxiliary address goes with the
    /// subnet that holds it; subnets may not overlap.
    static func ipamConfig(subnets: [String], ranges: [String], gateways: [String],
                           aux: [(String, String?)]) throws(CLIError) -> [JSON] {
        if subnets.count < ranges.count || subnets.count < gateways.count {
            throw CLIError("every ip-range or gateway must have a corresponding subnet")
        }
        var seen: [String] = []
        for s in subnets {
            for k in seen {
                let inside = try subnetMatches(s, k), around = try subnetMatches(k, s)
                if inside || around {
                    throw CLIError("multiple overlapping subnet configuration is not supported")
                }
            }
            seen.append(s)
        }
        var configs = subnets.map { s -> (subnet: String, range: String?, gateway: String?, aux: JSONObject) in (s, nil, nil, JSONObject()) }
        for r in ranges {
            var match = false
            for i in configs.indices {
                guard try subnetMatches(configs[i].subnet, r) else { continue }
                if let old = configs[i].range {
                    throw CLIError("cannot configure multiple ranges (\(r), \(old)) on the same subnet (\(configs[i].subnet))")
                }
                configs[i].range = r
                match = true
            }
            if !match { throw CLIError("no matching subnet for range \(r)") }
        }
        for g in gateways {
            var match = false
            for i in configs.indices {
                guard try subnetMatches(configs[i].subnet, g) else { continue }
                if let old = configs[i].gateway {
                    throw CLIError("cannot configure multiple gateways (\(g), \(old)) for the same subnet (\(configs[i].subnet))")
                }
                configs[i].gateway = g
                match = true
            }
            if !match { throw CLIError("no matching subnet for gateway \(g)") }
        }
        for (name, address) in aux {
            let address = address ?? ""
            var match = false
            for i in configs.indices {
                guard try subnetMatches(configs[i].subnet, address) else { continue }
                configs[i].aux[name] = .string(address)
                match = true
            }
            if !match { throw CLIError("no matching subnet for aux-address \(address)") }
        }
        return configs.map { c -> JSON in
            var o = JSONObject()
            o["Subnet"] = .string(c.subnet)
            o["IPRange"] = c.range.map(JSON.string)
            o["Gateway"] = c.gateway.map(JSON.string)
            if !c.aux.isEmpty { o["AuxiliaryAddresses"] = .object(c.aux) }
            return .object(o)
        }
    }

    /// docker's `subnetMatches`: whether `subnet` (CIDR) holds `data` (an address, or a CIDR's address).
    static func subnetMatches(_ subnet: String, _ data: String) throws(CLIError) -> Bool {
        guard let net = IPText.cidr(subnet) else { throw CLIError("invalid subnet: invalid CIDR address: \(subnet)") }
        let ip: [UInt8]?
        if data.contains("/") {
            guard let c = IPText.cidr(data) else { throw CLIError("invalid CIDR address: \(data)") }
            ip = c.address
        } else {
            ip = IPText.bytes(data)
        }
        return ip.map { IPText.contains(net, $0) } ?? false
    }

    /// pflag's string slices: every value may hold several, comma-separated.
    static func commaList(_ values: [String]) -> [String] {
        values.flatMap { $0.isEmpty ? [] : $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    }

    static let headers = [
        "ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv4": "IPV4", "IPv6": "IPV6",
        "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT",
    ]

    static let ls = Command(
        name: "network ls", usage: "berth network ls [OPTIONS]", summary: "List networks",
        options: [Option("quiet", "q"), Option("no-trunc"), Option("format", nil, .value), Option("filter", "f", .list)],
        maxArgs: 0
    ) { cli, args in
        let list = try cli.client().get("/networks", query: [("filters", try filtersJSON(args.list("filter")))]).array ?? []
        let sorted = list.sorted { naturalLess($0["Name"]?.string ?? "", $1["Name"]?.string ?? "") }
        let rows = sorted.map { row($0, trunc: !args.flag("no-trunc")) }
        // As docker's: -q only replaces the default table, not a format of one's own.
        var format = args.format ?? "table"
        if args.flag("quiet") && format == "table" { format = "{{.ID}}" }
        try printListing(rows: rows, format: format, defaultTable: "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
                         headers: headers)
        return 0
    }

    /// One `network ls` row: docker's network formatting context, keys sorted as its JSON.
    static func row(_ n: JSON, trunc: Bool) -> JSON {
        let id = n["Id"]?.string ?? ""
        let labels = (n["Labels"]?.object?.pairs ?? []).map { "\($0.0)=\($0.1.string ?? "")" }.sorted()
        let fields: [(String, String)] = [
            ("CreatedAt", goTimeString(n["Created"]?.string ?? "")), ("Driver", n["Driver"]?.string ?? ""),
            ("ID", trunc ? shortID(id) : id), ("IPv4", String(n["EnableIPv4"]?.bool ?? false)),
            ("IPv6", String(n["EnableIPv6"]?.bool ?? false)), ("Internal", String(n["Internal"]?.bool ?? false)),
            ("Labels", labels.joined(separator: ",")), ("Name", n["Name"]?.string ?? ""), ("Scope", n["Scope"]?.string ?? ""),
        ]
        return .object(fields.map { ($0.0, JSON.string($0.1)) })
    }

    static let inspect = Command(
        name: "network inspect", usage: "berth network inspect [OPTIONS] NETWORK [NETWORK...]",
        summary: "Display detailed information on one or more networks",
        options: [Option("format", "f", .value), Option("verbose", "v")], minArgs: 1
    ) { cli, args in
        try ContainerCommands.inspectObjects(cli, args, kinds: ["network"])
    }

    static let rm = Command(
        name: "network rm", usage: "berth network rm NETWORK [NETWORK...]", summary: "Remove one or more networks",
        options: [Option("force", "f")], minArgs: 1
    ) { cli, args in
        let client = try cli.client()
        return forEachTarget(args.positionals) { name in
            do {
                _ = try client.call("DELETE", "/networks/\(percentEncode(name))").body()
            } catch let error as ClientError {
                // -f: a network that is not there is no error.
                if args.flag("force") && error.kind == .daemon && error.status == 404 { return }
                throw error
            }
            cli.out(name + "\n")
        }
    }

    static let prune = Command(
        name: "network prune", usage: "berth network prune [OPTIONS]", summary: "Remove all unused networks",
        options: [Option("force", "f"), Option("filter", nil, .list)], maxArgs: 0
    ) { cli, args in
        guard try confirm(cli, args, "WARNING! This will remove all custom networks not used by at least one container.") else {
            return 0
        }
        let answer = try cli.client().json("POST", "/networks/prune", query: [("filters", try filtersJSON(args.list("filter")))])
        let deleted = (answer["NetworksDeleted"]?.array ?? []).compactMap(\.string)
        // docker prints the list and a blank line, and no reclaimed space.
        if !deleted.isEmpty { cli.out("Deleted Networks:\n" + deleted.map { $0 + "\n" }.joined() + "\n") }
        return 0
    }

    static let connect = Command(
        name: "network connect", usage: "berth network connect [OPTIONS] NETWORK CONTAINER",
        summary: "Connect a container to a network",
        options: [Option("alias", nil, .list), Option("ip", nil, .value), Option("ip6", nil, .value),
                  Option("link", nil, .list), Option("link-local-ip", nil, .list), Option("driver-opt", nil, .list),
                  Option("gw-priority", nil, .value), Option("mac-address", nil, .value)],
        minArgs: 2, maxArgs: 2
    ) { cli, args in
        try cli.client().json("POST", "/networks/\(percentEncode(args.positionals[0]))/connect", json: try connectBody(args))
        return 0
    }

    /// docker's `NetworkConnect` body. `--alias`, `--driver-opt` and `--link-local-ip` are string
    /// slices (comma-separated values); `--link` is passed on for daemons that have links.
    static func connectBody(_ args: Arguments) throws -> JSON {
        var ipam = JSONObject()
        if let ip = args.value("ip"), !ip.isEmpty { ipam["IPv4Address"] = .string(ip) }
        if let ip = args.value("ip6"), !ip.isEmpty { ipam["IPv6Address"] = .string(ip) }
        let linkLocal = commaList(args.list("link-local-ip"))
        if !linkLocal.isEmpty { ipam["LinkLocalIPs"] = .strings(linkLocal) }
        var endpoint = JSONObject()
        endpoint["IPAMConfig"] = .object(ipam)
        if !args.list("link").isEmpty { endpoint["Links"] = .strings(args.list("link")) }
        endpoint["Aliases"] = .strings(commaList(args.list("alias")))
        var driverOpts = JSONObject()
        for o in commaList(args.list("driver-opt")) {
            let (k, v) = ContainerConfig.split(o)
            guard v != nil, !k.trimming(" \t").isEmpty else { throw CLIError("invalid key/value pair format in driver options") }
            driverOpts[k.trimming(" \t")] = .string((v ?? "").trimming(" \t"))
        }
        if !driverOpts.isEmpty { endpoint["DriverOpts"] = .object(driverOpts) }
        if let p = args.value("gw-priority") {
            guard let n = Int(p) else {
                throw CLIError("invalid argument \"\(p)\" for \"--gw-priority\" flag: strconv.ParseInt: parsing \(goQuote(p)): invalid syntax")
            }
            endpoint["GwPriority"] = .int(n)
        }
        if let mac = args.value("mac-address"), !mac.isEmpty {
            guard ContainerConfig.validMAC(mac) else { throw CLIError("invalid MAC address: \(goQuote(mac))") }
            endpoint["MacAddress"] = .string(mac)
        }
        return .object([("Container", .string(args.positionals[1])), ("EndpointConfig", .object(endpoint))])
    }

    static let disconnect = Command(
        name: "network disconnect", usage: "berth network disconnect [OPTIONS] NETWORK CONTAINER",
        summary: "Disconnect a container from a network", options: [Option("force", "f")], minArgs: 2, maxArgs: 2
    ) { cli, args in
        try cli.client().json("POST", "/networks/\(percentEncode(args.positionals[0]))/disconnect", json: .object([
            ("Container", .string(args.positionals[1])), ("Force", .bool(args.flag("force"))),
        ]))
        return 0
    }

    /// Go's `time.Time.String()` of an RFC 3339 time from the API (network ls `CreatedAt`):
    /// `2025-05-30 12:04:43.123456789 +0000 UTC`. Text it cannot read is shown as it is.
    static func goTimeString(_ text: String) -> String {
        let chars = Array(text)
        guard chars.count >= 20, chars[10] == "T" || chars[10] == "t" else { return text }
        var i = 19
        var fraction = ""
        if chars[i] == "." {
            i += 1
            while i < chars.count, isDigit(chars[i]) {
                fraction.append(chars[i])
                i += 1
            }
            while fraction.last == "0" { fraction.removeLast() }
        }
        let zone = String(chars[i...])
        let shownZone: String
        if zone == "Z" || zone == "z" {
            shownZone = "+0000 UTC"
        } else if zone.count == 6, zone.first == "+" || zone.first == "-" {
            let offset = zone.replacing(":", with: "")
            shownZone = "\(offset) \(offset)"
        } else {
            return text
        }
        return String(chars[0..<10]) + " " + String(chars[11..<19]) + (fraction.isEmpty ? "" : "." + fraction) + " " + shownZone
    }
}

extension Command {
    /// The same command under another name (docker's `network list` for `network ls`).
    func named(_ name: String) -> Command {
        Command(name: name, usage: usage, summary: summary, options: options, interspersed: interspersed,
                minArgs: minArgs, maxArgs: maxArgs, failureCode: failureCode, body: body)
    }
}

/// 0 to 9 only (`Character.isNumber` takes any script's digits).
func isDigit(_ c: Character) -> Bool { c >= "0" && c <= "9" }

/// Go's `sortorder.NaturalLess`, docker's order for network names and `port` lines: runs of
/// digits compare as numbers, and sort before other characters.
func naturalLess(_ a: String, _ b: String) -> Bool {
    let s1 = Array(a.utf8), s2 = Array(b.utf8)
    func digit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
    var i = 0, j = 0
    while i < s1.count && j < s2.count {
        let c1 = s1[i], c2 = s2[j]
        let d1 = digit(c1), d2 = digit(c2)
        if d1 != d2 { return d1 }
        if !d1 {
            if c1 != c2 { return c1 < c2 }
            i += 1
            j += 1
            continue
        }
        while i < s1.count && s1[i] == 0x30 { i += 1 }
        while j < s2.count && s2[j] == 0x30 { j += 1 }
        let start1 = i, start2 = j
        while i < s1.count && digit(s1[i]) { i += 1 }
        while j < s2.count && digit(s2[j]) { j += 1 }
        if i - start1 != j - start2 { return i - start1 < j - start2 }
        let n1 = s1[start1..<i], n2 = s2[start2..<j]
        if n1 != n2 { return n1.lexicographicallyPrecedes(n2) }
        if start1 != start2 { return start1 < start2 }
    }
    return s1.count < s2.count
}

/// IP addresses and CIDR blocks as Go's `net.ParseIP`/`net.ParseCIDR` read them (IPv4 as 4
/// bytes, IPv6 as 16).
enum IPText {
    static func bytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    /// Go's `ip.String()`: dotted quads for IPv4 (and IPv4-mapped IPv6), RFC 5952 for IPv6.
    static func canonical(_ text: String) -> String? {
        guard var b = bytes(text) else { return nil }
        if b.count == 16, b[0..<10].allSatisfy({ $0 == 0 }), b[10] == 0xFF, b[11] == 0xFF { b = Array(b[12...]) }
        if b.count == 4 { return b.map(String.init).joined(separator: ".") }
        var v6 = in6_addr()
        withUnsafeMutableBytes(of: &v6) { $0.copyBytes(from: b) }
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &v6, &buf, socklen_t(buf.count)) != nil else { return nil }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `address/prefix`: the address as written and the prefix length.
    static func cidr(_ text: String) -> (address: [UInt8], prefix: Int)? {
        guard let slash = text.firstIndex(of: "/"), let address = bytes(String(text[..<slash])) else { return nil }
        let digits = text[text.index(after: slash)...]
        guard !digits.isEmpty, digits.count <= 3, digits.allSatisfy(isDigit), let prefix = Int(digits),
              prefix <= address.count * 8 else { return nil }
        return (address, prefix)
    }

    /// Whether the block holds the address (an IPv4-mapped IPv6 address counts as IPv4).
    static func contains(_ net: (address: [UInt8], prefix: Int), _ ip: [UInt8]) -> Bool {
        var ip = ip
        if net.address.count == 4, ip.count == 16, ip[0..<10].allSatisfy({ $0 == 0 }), ip[10] == 0xFF, ip[11] == 0xFF {
            ip = Array(ip[12...])
        }
        guard ip.count == net.address.count else { return false }
        var bits = net.prefix
        for (a, b) in zip(net.address, ip) {
            if bits <= 0 { break }
            let mask: UInt8 = bits >= 8 ? 0xFF : ~(0xFF >> UInt8(bits))
            if a & mask != b & mask { return false }
            bits -= 8
        }
        return true
    }
}
