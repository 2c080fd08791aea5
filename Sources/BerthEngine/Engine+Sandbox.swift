import BerthDNS
import BerthNetwork
import BerthOS
import FoundationEssentials
import Glibc

/// The kernel resources a running container's networking holds, released when it stops.
struct NetworkSandbox {
    let token = UInt64.random(in: 1...UInt64.max)
    var reservations: [PortReservation] = []
    var forwards: [Forward] = []
    var dns: DNSEndpoint?
    /// The DNS server was asked for (it comes up asynchronously).
    var dnsRequested = false
}

/// A container's networking from start to exit: its namespace, endpoints, published ports,
/// embedded DNS and the files it sees.
extension Engine {
    // MARK: Container start and stop

    /// Gives a starting container its network namespace, links, addresses, published ports and
    /// DNS, and writes its /etc/hosts and resolv.conf. Undoes all of it if a step fails.
    func setUpSandbox(_ rec: inout ContainerRecord) throws(EngineError) {
        let mode = rec.hostConfig.networkMode ?? "default"
        let managed = !(mode == "host" || mode.hasPrefix("container:"))
        if managed {
            guard let driver = networkDriver else { throw EngineError(.invalidState, "networking is not set up") }
            try Self.networkCall { () throws(NetworkError) in try driver.createSandbox(at: sandboxPath(rec.id)) }
            sandboxes[rec.id] = NetworkSandbox()
        }
        do {
            if managed {
                var first = true
                for name in orderedEndpointNames(rec) {
                    try attach(&rec, networkName: name, defaultRoute: first)
                    first = false
                }
                try publishPorts(&rec)
            }
            // Read once for both: what the container inherits and where its DNS forwards.
            let hostConf = hostResolvConf()
            if managed { startDNS(rec, host: hostConf) }
            try writeNetworkFiles(rec, host: hostConf)
        } catch {
            tearDownSandbox(&rec)
            throw error
        }
    }

    /// The network first created with the container goes first: it has the default route.
    func orderedEndpointNames(_ rec: ContainerRecord) -> [String] {
        let mode = rec.hostConfig.networkMode ?? "default"
        let primary = mode == "default" ? "bridge" : ((try? resolveNetwork(mode))?.name ?? mode)
        return (rec.endpoints ?? [:]).keys.sorted { a, b in a == primary ? true : b == primary ? false : a < b }
    }

    func attach(_ rec: inout ContainerRecord, networkName: String, defaultRoute: Bool) throws(EngineError) {
        guard var endpoint = rec.endpoints?[networkName], let driver = networkDriver else { return }
        guard let net = networks[endpoint.networkID] ?? network(named: networkName) else {
            throw EngineError(.notFound, "network \(networkName) not found")
        }
        guard net.driver == .bridge || net.driver == .macvlan else { return }
        let used = Set((rec.endpoints ?? [:]).values.map(\.interface))
        let index = (0..<16).first { !used.contains("eth\($0)") } ?? 0
        let ip = try Self.networkCall { () throws(NetworkError) in
            guard var allocator = allocators[net.id] else { throw NetworkError(.system, "no address allocator for \(net.name)") }
            let ip = try allocator.allocate(endpoint.requestedIPv4)
            allocators[net.id] = allocator
            return ip
        }
        var ip6: IPv6Address?
        if net.subnet6 != nil {
            do {
                ip6 = try Self.networkCall { () throws(NetworkError) in
                    guard var allocator = allocators6[net.id] else { throw NetworkError(.system, "no IPv6 allocator for \(net.name)") }
                    let ip = try allocator.allocate(endpoint.requestedIPv6)
                    allocators6[net.id] = allocator
                    return ip
                }
            } catch {
                allocators[net.id]?.release(ip)
                throw error
            }
        }
        endpoint.endpointID = Self.randomID()
        endpoint.ipv4 = ip
        endpoint.ipv6 = ip6
        endpoint.prefixLength6 = ip6 == nil ? nil : net.subnet6?.prefix
        endpoint.gateway6 = ip6 == nil || net.isInternal ? nil : net.gateway6
        endpoint.prefixLength = net.subnet?.prefix ?? 0
        endpoint.gateway = net.isInternal ? nil : net.gateway
        endpoint.macAddress = ip.containerMAC
        endpoint.interface = "eth\(index)"
        endpoint.hostInterface = net.driver == .bridge ? NetworkDriver.hostInterfaceName() : ""
        let attachment = NetworkDriver.Attachment(network: net, interface: endpoint.interface, hostInterface: endpoint.hostInterface,
                                                  address: ip, address6: ip6, defaultRoute: defaultRoute)
        do {
            try Self.networkCall { () throws(NetworkError) in try driver.attach(namespace: sandboxPath(rec.id), attachment) }
        } catch {
            allocators[net.id]?.release(ip)
            if let ip6 { allocators6[net.id]?.release(ip6) }
            throw error
        }
        rec.endpoints?[networkName] = endpoint
    }

    /// The address published ports forward to: the container's on its first bridge network.
    func publishTarget(_ rec: ContainerRecord) -> IPv4Address? {
        for name in orderedEndpointNames(rec) {
            guard let ep = rec.endpoints?[name], let ip = ep.ipv4, networks[ep.networkID]?.driver == .bridge else { continue }
            return ip
        }
        return nil
    }

    /// What `PortBindings` and `PublishAllPorts` ask for; also the check at create.
    static func portRequests(_ hc: DockerHostConfig, exposed: [String], defaultHostIP: IPv4Address? = nil) throws(EngineError) -> [PortRequest] {
        var bindings: [String: [(hostIP: String?, hostPort: String?)]] = [:]
        for (key, list) in hc.portBindings ?? [:] { bindings[key] = (list ?? []).map { ($0.hostIp, $0.hostPort) } }
        return try networkCall { () throws(NetworkError) in
            try PortRequest.requests(bindings: bindings, exposed: exposed, publishAll: hc.publishAllPorts == true,
                                     defaultHostIP: defaultHostIP)
        }
    }

    func publishPorts(_ rec: inout ContainerRecord) throws(EngineError) {
        guard let driver = networkDriver else { return }
        let hc = rec.hostConfig
        guard hc.portBindings?.isEmpty == false || hc.publishAllPorts == true else { rec.publishedPorts = nil; return }
        guard let target = publishTarget(rec) else { rec.publishedPorts = nil; return }
        let defaultIP = orderedEndpointNames(rec).first.flatMap { rec.endpoints?[$0] }.flatMap { networks[$0.networkID]?.defaultHostIP }
        let requests = try Self.portRequests(hc, exposed: Array((rec.config.exposedPorts ?? [:]).keys), defaultHostIP: defaultIP)
        var sandbox = sandboxes[rec.id] ?? NetworkSandbox()
        try Self.networkCall { () throws(NetworkError) in
            for request in requests {
                let reservation = try PortReservation.reserve(request)
                sandbox.reservations.append(reservation)
                sandbox.forwards.append(Forward(port: reservation.port, container: target))
            }
            try driver.addForwards(sandbox.forwards)
        }
        rec.publishedPorts = sandbox.reservations.map(\.port)
        sandboxes[rec.id] = sandbox
    }

    /// Undoes `setUpSandbox`: everything the running container held on the host.
    func tearDownSandbox(_ rec: inout ContainerRecord) {
        if let sandbox = sandboxes.removeValue(forKey: rec.id) {
            networkDriver?.removeForwards(sandbox.forwards)
            if let dns = sandbox.dns { Task { await dns.close() } }
        }
        // The container has exited: unpinning its namespace takes its links with it.
        networkDriver?.removeSandbox(at: sandboxPath(rec.id))
        clearLiveNetwork(&rec)
    }

    /// Tears the sandbox down if this run set one up.
    func releaseNetwork(_ rec: inout ContainerRecord) {
        guard rec.networkReady else { return }
        tearDownSandbox(&rec)
        rec.networkReady = false
    }

    func clearLiveNetwork(_ rec: inout ContainerRecord) {
        for (name, var ep) in rec.endpoints ?? [:] {
            if let ip = ep.ipv4 { allocators[ep.networkID]?.release(ip) }
            if let ip = ep.ipv6 { allocators6[ep.networkID]?.release(ip) }
            ep.clearLive()
            rec.endpoints?[name] = ep
        }
        rec.publishedPorts = nil
    }

    // MARK: DNS

    /// Serves the embedded DNS on 127.0.0.11 inside the container's namespace when one of its
    /// networks has it, or when the host's resolvers are all loopback ones the container
    /// cannot reach (then it only forwards).
    func startDNS(_ rec: ContainerRecord, host hostConf: ResolvConf) {
        guard needsEmbeddedDNS(rec, host: hostConf), sandboxes[rec.id]?.dnsRequested == false else { return }
        sandboxes[rec.id]?.dnsRequested = true
        guard let (udp, tcp) = try? networkDriver?.dnsSockets(in: sandboxPath(rec.id)) else { return }
        let upstreams = (rec.hostConfig.dns.flatMap { $0.isEmpty ? nil : ResolvConf(nameservers: $0) } ?? hostConf).upstreams
        let id = rec.id
        let server = dnsServer
        // The sandbox this server belongs to: if the container stops (and maybe starts again)
        // before the server is up, the server is for a namespace that is gone.
        let token = sandboxes[id]?.token
        Task {
            let endpoint = try? await server.serve(udpSocket: udp, tcpSocket: tcp, upstreams: upstreams) { [weak self] name, type in
                await self?.answerDNS(from: id, name: name, type: type) ?? .forward
            }
            guard let endpoint else { return }
            await self.dnsStarted(id, token: token, endpoint)
        }
    }

    func dnsStarted(_ id: String, token: UInt64?, _ endpoint: DNSEndpoint) async {
        guard let token, sandboxes[id]?.token == token else {
            await endpoint.close()
            return
        }
        sandboxes[id]?.dns = endpoint
    }

    /// The host's resolver configuration (`--resolv-conf`), which containers inherit.
    func hostResolvConf() -> ResolvConf {
        ResolvConf(parsing: (try? FileSystem.readString(networkOptions.resolvConf)) ?? "")
    }

    func needsEmbeddedDNS(_ rec: ContainerRecord, host: ResolvConf) -> Bool {
        let endpoints = rec.endpoints ?? [:]
        if endpoints.values.contains(where: { networks[$0.networkID]?.hasEmbeddedDNS == true }) { return true }
        return !endpoints.isEmpty && (rec.hostConfig.dns ?? []).isEmpty && host.nonLoopbackNameservers.isEmpty
    }

    /// Docker's embedded DNS: a container's name, its network aliases and short ID resolve on
    /// the user-defined networks the asking container shares with it; nothing else is ours.
    func answerDNS(from id: String, name: String, type: DNSRecordType) -> DNSLookupResult {
        guard let asker = containers[id] else { return .forward }
        let shared = (asker.endpoints ?? [:]).values.filter { networks[$0.networkID]?.hasEmbeddedDNS == true }.map(\.networkID)
        if shared.isEmpty { return .forward }
        if type == .ptr {
            guard let ip = Self.reverseIPv4(name) else { return .forward }
            for rec in containers.values where rec.running {
                for (netName, ep) in rec.endpoints ?? [:] where ep.ipv4 == ip && shared.contains(ep.networkID) {
                    return .names([String(rec.name.dropFirst()) + "." + netName])
                }
            }
            return .forward
        }
        var addresses: [String] = []
        for rec in containers.values where rec.running {
            for (_, ep) in rec.endpoints ?? [:] where shared.contains(ep.networkID) {
                guard let ip = ep.ipv4 else { continue }
                let names = [String(rec.name.dropFirst()), String(rec.id.prefix(12))] + ep.aliases
                if names.contains(where: { $0.lowercased() == name }) {
                    addresses.append(ip.description)
                    if let ip6 = ep.ipv6 { addresses.append(ip6.description) }
                }
            }
        }
        return addresses.isEmpty ? .forward : .addresses(addresses)
    }

    /// `4.3.2.1.in-addr.arpa` → 1.2.3.4.
    static func reverseIPv4(_ name: String) -> IPv4Address? {
        guard name.hasSuffix(".in-addr.arpa") else { return nil }
        let labels = name.dropLast(".in-addr.arpa".count).split(separator: ".")
        guard labels.count == 4 else { return nil }
        return IPv4Address(labels.reversed().joined(separator: "."))
    }

    // MARK: Files

    /// /etc/hosts, /etc/resolv.conf and /etc/hostname as this run of the container sees them.
    /// `inPlace` for a running container: its files are bind-mounted, so they are rewritten
    /// rather than replaced.
    func writeNetworkFiles(_ rec: ContainerRecord, host hostConf: ResolvConf, inPlace: Bool = false) throws(EngineError) {
        let hc = rec.hostConfig
        let mode = hc.networkMode ?? "default"
        var hostname = rec.config.hostname.flatMap { $0.isEmpty ? nil : $0 } ?? String(rec.id.prefix(12))
        var resolv = hostConf
        var hosts: String
        let firstGateway = orderedEndpointNames(rec).lazy.compactMap { rec.endpoints?[$0]?.gateway }.first
            ?? network(named: "bridge")?.gateway
        var extra: [(name: String, address: String)] = []
        for spec in hc.extraHosts ?? [] {
            extra.append(try Self.networkCall { () throws(NetworkError) in
                try ContainerFiles.parseExtraHost(spec, gateway: firstGateway?.description)
            })
        }
        if mode == "host" {
            if rec.config.hostname == nil || rec.config.hostname == "" { hostname = Self.hostHostname() }
            hosts = ((try? FileSystem.readString("/etc/hosts")) ?? ContainerFiles.hosts(extraHosts: [], own: []))
            if !hosts.hasSuffix("\n") { hosts += "\n" }
            for h in extra { hosts += "\(h.address)\t\(h.name)\n" }
        } else {
            // Docker's order: the fully qualified name first, then the short one.
            var names = [hostname]
            if let domain = rec.config.domainname, !domain.isEmpty {
                names = [hostname + "." + domain, hostname]
            } else if let dot = hostname.firstIndex(of: ".") {
                names.append(String(hostname[..<dot]))
            }
            let first = orderedEndpointNames(rec).lazy.compactMap { rec.endpoints?[$0] }.first { $0.ipv4 != nil }
            let own = [first?.ipv4?.description, first?.ipv6?.description].compactMap { $0 }.map { (address: $0, names: names) }
            hosts = ContainerFiles.hosts(extraHosts: extra, own: own)
            if needsEmbeddedDNS(rec, host: hostConf) {
                resolv = resolv.forEmbeddedServer()
            } else {
                resolv.nameservers = (hc.dns ?? []).isEmpty ? hostConf.nonLoopbackNameservers : hc.dns!
            }
        }
        if mode != "host" || hc.dns?.isEmpty == false {
            if let servers = hc.dns, !servers.isEmpty, mode == "host" { resolv.nameservers = servers }
        }
        if let search = hc.dnsSearch, !search.isEmpty { resolv.search = search == ["."] ? [] : search }
        if let options = hc.dnsOptions, !options.isEmpty { resolv.options = options }
        let dir = dir(rec.id)
        let files = [("hostname", hostname + "\n"), ("hosts", hosts), ("resolv.conf", resolv.rendered())]
        try Self.system { () throws(SystemError) in
            for (name, text) in files {
                if inPlace {
                    try FileSystem.overwrite(dir + "/" + name, Array(text.utf8))
                } else {
                    try FileSystem.writeAtomically(dir + "/" + name, Array(text.utf8))
                }
            }
        }
    }

    static func hostHostname() -> String {
        var buf = [UInt8](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count) == 0 else { return "localhost" }
        return String(decoding: buf.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// For `--network container:NAME` (and the other `container:` modes): the namespace of a
    /// running container. The network one is the pinned sandbox, which outlives a restart of it.
    func namespaceLookup() -> (String, String) throws(EngineError) -> String {
        let snapshot = containers
        return { [self] ref, type throws(EngineError) in
            let id: String
            do throws(EngineError) { id = try Self.resolve(ref, in: snapshot) } catch {
                guard error.code == .notFound else { throw error }
                // Not a 404: clients read a 404 from create as a missing image and try to pull it.
                throw EngineError(.invalidArgument, "cannot join the \(type) namespace of container \(ref): No such container: \(ref)")
            }
            let rec = snapshot[id]!
            guard rec.running else { throw EngineError(.conflict, "cannot join container \(ref): it is not running") }
            if type == "network", rec.networkReady { return sandboxPath(id) }
            return "/proc/\(rec.pid)/ns/\(type == "network" ? "net" : type == "mount" ? "mnt" : type)"
        }
    }
}
