import BerthImages
import BerthNetwork
import BerthOS
import FoundationEssentials
import Glibc

/// How the daemon sets up its networks (berthd's `--bridge`, `--bip`, `--icc`, ...).
public struct NetworkOptions: Sendable {
    /// The default bridge's interface, or `none` for no default bridge (containers then get
    /// loopback only unless they ask for a network).
    public var bridge = "berth0"
    /// `--bip`: the default bridge's gateway address and prefix (`172.17.0.1/16`); chosen from
    /// the default pools when nil.
    public var bridgeIP: IPv4Subnet?
    public var interContainer = true
    public var ipForward = true
    /// Berth's nftables table (or the prefix of its iptables chains).
    public var firewallTable = "berth"
    /// `nftables`, `iptables`, or `auto`: nftables where the kernel has it.
    public var firewallBackend = "auto"
    /// The host's resolver configuration, which containers inherit.
    public var resolvConf = "/etc/resolv.conf"
    public init() {}
}

/// A network as the API shows it: its definition and the running containers on it.
public struct NetworkDetails: Sendable {
    public struct Member: Sendable {
        public var containerID: String
        public var name: String
        public var endpoint: Endpoint
    }
    public var definition: NetworkDefinition
    public var members: [Member]
}

/// `POST /networks/create` in engine terms.
public struct NetworkCreateRequest: Sendable {
    public var name: String
    public var driver: String
    public var isInternal = false
    public var attachable = false
    public var enableIPv6 = false
    public var subnet: String?
    public var gateway: String?
    public var ipRange: String?
    /// With `enableIPv6`: the IPv6 prefix and gateway (a random unique-local /64 when nil).
    public var subnet6: String?
    public var gateway6: String?
    public var options: [String: String] = [:]
    public var labels: [String: String] = [:]
    public var ipamOptions: [String: String] = [:]
    public init(name: String, driver: String = "bridge") {
        self.name = name
        self.driver = driver
    }
}

/// Networks: the daemon's setup at start, the network API, and the endpoints a container is
/// created with (its life on them is in Engine+Sandbox).
extension Engine {
    /// Where a running container's network namespace is pinned (inspect's `SandboxKey`).
    public nonisolated func sandboxPath(_ id: String) -> String { root + "/netns/" + id }

    // MARK: Daemon start

    /// Loads the networks, creates the built-in ones, brings bridges and the firewall table to
    /// the state the records describe, and cleans what a crash left behind.
    public func setUpNetworking() throws(EngineError) {
        try Self.system { () throws(SystemError) in try FileSystem.makeDirectories(root + "/networks", mode: 0o700) }
        try Self.system { () throws(SystemError) in try FileSystem.makeDirectories(root + "/netns", mode: 0o700) }
        var loaded: [String: NetworkDefinition] = [:]
        let decoder = JSONDecoder()
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: root + "/networks")) ?? [] where entry.hasSuffix(".json") {
            guard let bytes = try? FileSystem.readBytes(root + "/networks/" + entry),
                  let net = try? decoder.decode(NetworkDefinition.self, from: Data(bytes)) else { continue }
            loaded[net.id] = net
        }
        networks = loaded
        let driver = try Self.networkCall { () throws(NetworkError) in
            try NetworkDriver(table: networkOptions.firewallTable, backend: networkOptions.firewallBackend)
        }
        networkDriver = driver
        if networkOptions.ipForward {
            try Self.networkCall { () throws(NetworkError) in try driver.enableForwarding() }
        }
        for (name, kind) in [("host", NetworkDefinition.Driver.host), ("none", .null)] where network(named: name) == nil {
            try store(NetworkDefinition(id: Self.randomID(), name: name, driver: kind, created: Timestamp.now()))
        }
        try setUpDefaultBridge()
        for net in networks.values where net.driver == .bridge {
            try Self.networkCall { () throws(NetworkError) in try driver.setUpBridge(net) }
        }
        for net in networks.values { (allocators[net.id], allocators6[net.id]) = Self.allocators(net) }
        if networks.values.contains(where: { $0.subnet6 != nil }) {
            try Self.networkCall { () throws(NetworkError) in try driver.enableIPv6Forwarding() }
        }

        // Running containers keep their namespace, links and addresses across a daemon restart;
        // stopped ones must hold nothing.
        var forwards: [Forward] = []
        let hostConf = hostResolvConf()
        for var rec in containers.values {
            if rec.running, FileSystem.exists(sandboxPath(rec.id)) {
                for (_, ep) in rec.endpoints ?? [:] {
                    if let ip = ep.ipv4 { allocators[ep.networkID]?.reserve(ip) }
                    if let ip = ep.ipv6 { allocators6[ep.networkID]?.reserve(ip) }
                }
                var sandbox = NetworkSandbox()
                if let target = publishTarget(rec) {
                    for port in rec.publishedPorts ?? [] {
                        let request = PortRequest(proto: port.proto, containerPort: port.containerPort,
                                                  hostIP: IPv4Address(port.hostIP).flatMap { $0.isUnspecified ? nil : $0 },
                                                  hostPorts: port.hostPort...port.hostPort)
                        if let reservation = try? PortReservation.reserve(request) { sandbox.reservations.append(reservation) }
                        sandbox.forwards.append(Forward(port: port, container: target))
                    }
                }
                forwards += sandbox.forwards
                sandboxes[rec.id] = sandbox
                startDNS(rec, host: hostConf)
            } else if rec.networkReady || FileSystem.exists(sandboxPath(rec.id)) {
                for (_, ep) in rec.endpoints ?? [:] where !ep.hostInterface.isEmpty { driver.removeStaleLink(ep.hostInterface) }
                driver.removeSandbox(at: sandboxPath(rec.id))
                clearLiveNetwork(&rec)
                rec.networkReady = false
                containers[rec.id] = rec
                try? persist(rec)
            }
        }
        try Self.networkCall { () throws(NetworkError) in
            try driver.applyFirewall(networks: Array(networks.values), forwards: forwards)
        }
    }

    /// The `bridge` network: created on first start, and kept in line with `--bridge`/`--bip`.
    func setUpDefaultBridge() throws(EngineError) {
        let existing = network(named: "bridge")
        guard networkOptions.bridge != "none" else {
            if let existing {
                networks[existing.id] = nil
                unlink(root + "/networks/\(existing.id).json")
            }
            return
        }
        var net = existing ?? NetworkDefinition(id: Self.randomID(), name: "bridge", driver: .bridge, created: Timestamp.now())
        net.options[NetworkDefinition.bridgeNameOption] = networkOptions.bridge
        net.options[NetworkDefinition.defaultBridgeOption] = "true"
        net.options[NetworkDefinition.iccOption] = networkOptions.interContainer ? "true" : "false"
        net.options[NetworkDefinition.masqueradeOption] = "true"
        if let bip = networkOptions.bridgeIP {
            net.subnet = bip.canonical
            net.gateway = bip.address
        } else if net.subnet == nil {
            let subnet = try freeSubnet(excluding: net.id)
            net.subnet = subnet
            net.gateway = subnet.host(1)
        }
        if net != existing { try store(net) }
    }

    // MARK: Network API

    public func networkList() -> [NetworkDetails] {
        networks.values.sorted { $0.name < $1.name }.map(details)
    }

    public func networkDetails(_ ref: String) throws(EngineError) -> NetworkDetails {
        details(try resolveNetwork(ref))
    }

    public func createNetwork(_ request: NetworkCreateRequest) throws(EngineError) -> NetworkDetails {
        // As libnetwork: any name but a blank one (networks are stored and bridged by ID).
        guard request.name.contains(where: { !$0.isWhitespace }) else {
            throw EngineError(.invalidArgument, "invalid name: \(request.name)")
        }
        if NetworkDefinition.builtinNames.contains(request.name) {
            throw EngineError(.forbidden, "\(request.name) is a pre-defined network and cannot be created")
        }
        if network(named: request.name) != nil {
            throw EngineError(.conflict, "network with name \(request.name) already exists")
        }
        guard let driverKind = NetworkDefinition.Driver(rawValue: request.driver.isEmpty ? "bridge" : request.driver) else {
            throw EngineError(.notFound, "plugin \"\(request.driver)\" not found")
        }
        guard driverKind == .bridge || driverKind == .macvlan else {
            throw EngineError(.forbidden, "only one instance of \"\(driverKind.rawValue)\" network is allowed")
        }
        guard let driver = networkDriver else { throw EngineError(.invalidState, "networking is not set up") }
        try Self.networkCall { () throws(NetworkError) in try NetworkDefinition.validate(options: request.options, driver: driverKind) }
        var net = NetworkDefinition(id: Self.randomID(), name: request.name, driver: driverKind, created: Timestamp.now(),
                                    isInternal: request.isInternal, attachable: request.attachable,
                                    options: request.options, labels: request.labels, ipamOptions: request.ipamOptions)
        if let text = request.subnet {
            guard let subnet = IPv4Subnet(text) else { throw EngineError(.invalidArgument, "invalid CIDR address: \(text)") }
            guard subnet.prefix <= 30 else { throw EngineError(.invalidArgument, "subnet \(text) is too small: a prefix of at most /30 is needed") }
            if let other = networks.values.first(where: { $0.subnet?.overlaps(subnet) == true }) {
                throw EngineError(.forbidden, "Pool overlaps with other one on this address space: \(subnet.canonical) overlaps network \(other.name) (\(other.subnet!.canonical))")
            }
            net.subnet = subnet.canonical
        } else {
            guard request.gateway == nil, request.ipRange == nil else {
                throw EngineError(.invalidArgument, "a gateway or IP range needs a subnet (--subnet)")
            }
            guard driverKind == .bridge else { throw EngineError(.invalidArgument, "the macvlan driver needs a subnet (--subnet)") }
            net.subnet = try freeSubnet(excluding: nil)
        }
        let subnet = net.subnet!
        if let text = request.gateway {
            guard let gw = IPv4Address(text) else { throw EngineError(.invalidArgument, "invalid gateway address: \(text)") }
            guard subnet.contains(gw), gw != subnet.network, gw != subnet.broadcast else {
                throw EngineError(.invalidArgument, "gateway \(gw) is not a host address of subnet \(subnet)")
            }
            net.gateway = gw
        } else {
            net.gateway = subnet.host(1)
        }
        if let text = request.ipRange {
            guard let range = IPv4Subnet(text) else { throw EngineError(.invalidArgument, "invalid CIDR address: \(text)") }
            guard subnet.contains(range) else {
                throw EngineError(.invalidArgument, "IP range \(range) is not inside subnet \(subnet)")
            }
            net.ipRange = range.canonical
        }
        if request.enableIPv6 {
            try settleIPv6(&net, subnet: request.subnet6, gateway: request.gateway6)
            try Self.networkCall { () throws(NetworkError) in try driver.enableIPv6Forwarding() }
        }
        if driverKind == .bridge {
            if networks.values.contains(where: { $0.driver == .bridge && $0.bridgeName == net.bridgeName }) {
                throw EngineError(.conflict, "bridge interface \(net.bridgeName) is already used by another network")
            }
            do {
                try Self.networkCall { () throws(NetworkError) in
                    try driver.setUpBridge(net)
                    try driver.applyFirewall(networks: Array(networks.values) + [net], forwards: allForwards())
                }
            } catch {
                try? driver.removeBridge(net)
                throw error
            }
        }
        try store(net)
        (allocators[net.id], allocators6[net.id]) = Self.allocators(net)
        publish("network", "create", id: net.id, attributes: ["name": net.name, "type": net.driver.rawValue])
        return details(net)
    }

    public func removeNetwork(_ ref: String) throws(EngineError) {
        let net = try resolveNetwork(ref)
        if net.isBuiltin { throw EngineError(.forbidden, "\(net.name) is a pre-defined network and cannot be removed") }
        let users = containers.values.filter { $0.running && $0.endpoints?[net.name] != nil }
        if !users.isEmpty {
            throw EngineError(.forbidden, "error while removing network: network \(net.name) id \(net.id) has active endpoints (\(users.map { String($0.name.dropFirst()) }.sorted().joined(separator: ", ")))")
        }
        if let driver = networkDriver, net.driver == .bridge {
            let rest = networks.values.filter { $0.id != net.id }
            try Self.networkCall { () throws(NetworkError) in
                try driver.applyFirewall(networks: Array(rest), forwards: allForwards())
                try driver.removeBridge(net)
            }
        }
        unlink(root + "/networks/\(net.id).json")
        networks[net.id] = nil
        allocators[net.id] = nil
        allocators6[net.id] = nil
        // Stopped containers forget it, as dockerd's do.
        for var rec in containers.values where rec.endpoints?[net.name] != nil {
            rec.endpoints?[net.name] = nil
            containers[rec.id] = rec
            try? persist(rec)
        }
        publish("network", "destroy", id: net.id, attributes: ["name": net.name, "type": net.driver.rawValue])
    }

    /// Removes the user-defined networks no container uses (running or not) that `include` accepts.
    public func pruneNetworks(where include: @Sendable (NetworkDetails) -> Bool) -> [String] {
        var deleted: [String] = []
        for net in networks.values.sorted(by: { $0.name < $1.name }) where !net.isBuiltin {
            guard !containers.values.contains(where: { $0.endpoints?[net.name] != nil }), include(details(net)) else { continue }
            if (try? removeNetwork(net.id)) != nil { deleted.append(net.name) }
        }
        return deleted
    }

    /// `docker network connect`: recorded for a stopped container, plugged in live for a running one.
    public func connect(network ref: String, container cref: String, aliases: [String], ipv4: String?,
                        ipv6: String? = nil) throws(EngineError) {
        let net = try resolveNetwork(ref)
        let id = try resolve(cref)
        guard var rec = containers[id] else { throw EngineError(.notFound, "No such container: \(cref)") }
        let mode = rec.hostConfig.networkMode ?? "default"
        if mode == "host" || mode == "none" || mode.hasPrefix("container:") || net.driver == .host || net.driver == .null {
            throw EngineError(.forbidden, "container cannot be connected to network \(net.name): it uses network mode \(net.driver == .host || net.driver == .null ? net.name : mode)")
        }
        if rec.endpoints?[net.name] != nil {
            throw EngineError(.forbidden, "endpoint with name \(rec.name.dropFirst()) already exists in network \(net.name)")
        }
        let endpoint = try makeEndpoint(net, aliases: aliases, ipv4: ipv4, ipv6: ipv6)
        var endpoints = rec.endpoints ?? [:]
        endpoints[net.name] = endpoint
        rec.endpoints = endpoints
        if rec.running, rec.networkReady {
            try attach(&rec, networkName: net.name, defaultRoute: false)
            // Joining a user-defined network brings the embedded DNS, as in Docker.
            if sandboxes[id]?.dnsRequested == false, net.hasEmbeddedDNS {
                let hostConf = hostResolvConf()
                startDNS(rec, host: hostConf)
                try writeNetworkFiles(rec, host: hostConf, inPlace: true)
            }
        }
        containers[id] = rec
        try persist(rec)
        publish("network", "connect", id: net.id, attributes: ["name": net.name, "type": net.driver.rawValue, "container": id])
    }

    public func disconnect(network ref: String, container cref: String, force: Bool) throws(EngineError) {
        let net = try resolveNetwork(ref)
        let id: String
        do { id = try resolve(cref) } catch {
            guard force else { throw error }
            return
        }
        guard var rec = containers[id] else { throw EngineError(.notFound, "No such container: \(cref)") }
        guard let endpoint = rec.endpoints?[net.name] else {
            throw EngineError(.forbidden, "container \(id) is not connected to network \(net.name)")
        }
        if endpoint.isLive {
            networkDriver?.detach(namespace: sandboxPath(id), interface: endpoint.interface, hostInterface: endpoint.hostInterface)
            if let ip = endpoint.ipv4 { allocators[net.id]?.release(ip) }
            if let ip = endpoint.ipv6 { allocators6[net.id]?.release(ip) }
        }
        rec.endpoints?[net.name] = nil
        containers[id] = rec
        try persist(rec)
        publish("network", "disconnect", id: net.id, attributes: ["name": net.name, "type": net.driver.rawValue, "container": id])
    }

    // MARK: Container create

    /// The endpoints a new container starts with: its network mode's network plus any others in
    /// `EndpointsConfig`. Host, none and `container:` modes have none.
    func plannedEndpoints(_ hostConfig: DockerHostConfig, _ networking: DockerNetworkingConfig?) throws(EngineError) -> [String: Endpoint]? {
        let mode = hostConfig.networkMode ?? "default"
        if mode == "host" || mode == "none" || mode.hasPrefix("container:") {
            if let extra = networking?.endpointsConfig, extra.keys.contains(where: { $0 != mode }) {
                throw EngineError(.invalidArgument, "conflicting options: network mode \(mode) cannot be combined with other networks")
            }
            if mode != "none", hostConfig.portBindings?.isEmpty == false || hostConfig.publishAllPorts == true, mode.hasPrefix("container:") {
                throw EngineError(.invalidArgument, "conflicting options: port publishing and the container type network mode")
            }
            return nil
        }
        // Clients name the default network `default` as often as `bridge`.
        func network(_ ref: String) throws(EngineError) -> NetworkDefinition? {
            let name = ref == "default" ? "bridge" : ref
            if name == "bridge" && networkOptions.bridge == "none" { return nil }  // no default bridge
            return try resolveNetwork(name)
        }
        var settings: [String: DockerNetworkingConfig.EndpointSettings] = [:]
        var chosen: [String: NetworkDefinition] = [:]
        for (ref, endpoint) in networking?.endpointsConfig ?? [:] {
            guard let net = try network(ref) else { continue }
            settings[net.name] = endpoint
            chosen[net.name] = net
        }
        if let primary = try network(mode) { chosen[primary.name] = primary }
        var out: [String: Endpoint] = [:]
        for net in chosen.values {
            if net.driver == .host || net.driver == .null {
                throw EngineError(.invalidArgument, "container cannot be connected to network \(net.name) and others")
            }
            let s = settings[net.name]
            out[net.name] = try makeEndpoint(net, aliases: s?.aliases ?? [], ipv4: s?.ipamConfig?.ipv4Address,
                                             ipv6: s?.ipamConfig?.ipv6Address)
        }
        return out
    }

    func makeEndpoint(_ net: NetworkDefinition, aliases: [String], ipv4: String?, ipv6: String? = nil) throws(EngineError) -> Endpoint {
        if net.name == "bridge", !aliases.isEmpty {
            throw EngineError(.invalidArgument, "network-scoped alias is supported only for containers in user defined networks")
        }
        var requested: IPv4Address?
        if let text = ipv4, !text.isEmpty {
            guard let ip = IPv4Address(text) else { throw EngineError(.invalidArgument, "invalid IPv4 address: \(text)") }
            guard net.name != "bridge" else {
                throw EngineError(.invalidArgument, "user specified IP address is supported on user defined networks only")
            }
            guard let subnet = net.subnet, subnet.contains(ip) else {
                throw EngineError(.invalidArgument, "invalid endpoint settings: address \(ip) is not in network \(net.name)'s subnet \(net.subnet?.description ?? "")")
            }
            requested = ip
        }
        var endpoint = Endpoint(networkID: net.id, aliases: aliases, requestedIPv4: requested)
        if let text = ipv6, !text.isEmpty {
            guard let ip = IPv6Address(text) else { throw EngineError(.invalidArgument, "invalid IPv6 address: \(text)") }
            guard let subnet6 = net.subnet6, subnet6.contains(ip) else {
                throw EngineError(.invalidArgument, "invalid endpoint settings: address \(ip) is not in an IPv6 subnet of network \(net.name)")
            }
            endpoint.requestedIPv6 = ip
        }
        return endpoint
    }

    // MARK: Helpers

    func network(named name: String) -> NetworkDefinition? {
        networks.values.first { $0.name == name }
    }

    /// Docker's order: full ID, then name, then a unique ID prefix.
    func resolveNetwork(_ ref: String) throws(EngineError) -> NetworkDefinition {
        if let net = networks[ref] { return net }
        if let net = network(named: ref) { return net }
        let matches = ref.isEmpty ? [] : networks.values.filter { $0.id.hasPrefix(ref) }
        if matches.count == 1 { return matches[0] }
        if matches.count > 1 { throw EngineError(.invalidArgument, "network \(ref) is ambiguous (\(matches.count) matches found based on ID prefix)") }
        throw EngineError(.notFound, "network \(ref) not found")
    }

    func details(_ net: NetworkDefinition) -> NetworkDetails {
        let members = containers.values.compactMap { rec -> NetworkDetails.Member? in
            guard rec.running, let ep = rec.endpoints?[net.name], ep.isLive else { return nil }
            return .init(containerID: rec.id, name: String(rec.name.dropFirst()), endpoint: ep)
        }
        return NetworkDetails(definition: net, members: members.sorted { $0.name < $1.name })
    }

    func store(_ net: NetworkDefinition) throws(EngineError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let bytes: Data
        do { bytes = try encoder.encode(net) } catch { throw EngineError(.system, "encoding network \(net.name): \(error)") }
        try Self.system { () throws(SystemError) in
            try FileSystem.writeAtomically(root + "/networks/\(net.id).json", bytes, mode: 0o600, durable: true)
        }
        networks[net.id] = net
    }

    /// The first default-pool subnet that no other network and no host route uses.
    func freeSubnet(excluding id: String?) throws(EngineError) -> IPv4Subnet {
        var taken = networks.values.filter { $0.id != id }.compactMap(\.subnet)
        if let driver = networkDriver { taken += (try? driver.routedSubnets()) ?? [] }
        guard let subnet = SubnetPool.first(avoiding: taken) else {
            throw EngineError(.forbidden, "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")
        }
        return subnet
    }

    func allForwards() -> [Forward] { sandboxes.values.flatMap(\.forwards) }

    static func allocators(_ net: NetworkDefinition) -> (AddressAllocator?, AddressAllocator6?) {
        (net.subnet.map { AddressAllocator(subnet: $0, gateway: net.gateway, range: net.ipRange) },
         net.subnet6.map { AddressAllocator6(subnet: $0, gateway: net.gateway6) })
    }

    /// The IPv6 side of `--ipv6`: the prefix asked for or a random unique-local /64, its gateway.
    func settleIPv6(_ net: inout NetworkDefinition, subnet text: String?, gateway gatewayText: String?) throws(EngineError) {
        var subnet: IPv6Subnet
        if let text {
            guard let parsed = IPv6Subnet(text) else { throw EngineError(.invalidArgument, "invalid CIDR address: \(text)") }
            guard parsed.prefix <= 120 else { throw EngineError(.invalidArgument, "IPv6 subnet \(text) is too small: at most /120") }
            subnet = parsed.canonical
        } else {
            repeat { subnet = IPv6Subnet.randomUniqueLocal() } while networks.values.contains { $0.subnet6?.overlaps(subnet) == true }
        }
        if let other = networks.values.first(where: { $0.subnet6?.overlaps(subnet) == true }) {
            throw EngineError(.forbidden, "Pool overlaps with other one on this address space: \(subnet) overlaps network \(other.name) (\(other.subnet6!))")
        }
        if let gatewayText {
            guard let gw = IPv6Address(gatewayText), subnet.contains(gw), gw != subnet.network else {
                throw EngineError(.invalidArgument, "gateway \(gatewayText) is not a host address of subnet \(subnet)")
            }
            net.gateway6 = gw
        } else {
            net.gateway6 = subnet.host(1)
        }
        net.subnet6 = subnet
        net.enableIPv6 = true
    }

    static func networkCall<T>(_ body: () throws(NetworkError) -> T) throws(EngineError) -> T {
        do { return try body() } catch {
            switch error.code {
            case .notFound: throw EngineError(.notFound, error.message)
            case .conflict: throw EngineError(.conflict, error.message)
            case .invalidArgument: throw EngineError(.invalidArgument, error.message)
            case .forbidden: throw EngineError(.forbidden, error.message)
            case .system: throw EngineError(.system, error.message)
            }
        }
    }
}
