import BerthEngine
import BerthNetwork

/// Docker's `network.Inspect` (`GET /networks/{id}`, a row of `GET /networks`).
struct DockerNetwork: Encodable, Sendable {
    struct IPAMConfig: Encodable, Sendable {
        var subnet: String?
        var ipRange: String?
        var gateway: String?
        enum CodingKeys: String, CodingKey { case subnet = "Subnet", ipRange = "IPRange", gateway = "Gateway" }
    }
    struct IPAM: Encodable, Sendable {
        var driver = "default"
        var options: [String: String]
        var config: [IPAMConfig]
        enum CodingKeys: String, CodingKey { case driver = "Driver", options = "Options", config = "Config" }
    }
    struct ConfigReference: Encodable, Sendable {
        var network = ""
        enum CodingKeys: String, CodingKey { case network = "Network" }
    }
    struct Member: Encodable, Sendable {
        var name: String
        var endpointID: String
        var macAddress: String
        var ipv4Address: String
        var ipv6Address = ""
        enum CodingKeys: String, CodingKey {
            case name = "Name", endpointID = "EndpointID", macAddress = "MacAddress"
            case ipv4Address = "IPv4Address", ipv6Address = "IPv6Address"
        }
    }

    var name: String
    var id: String
    var created: String
    var scope = "local"
    var driver: String
    var enableIPv4 = true
    var enableIPv6: Bool
    var ipam: IPAM
    var isInternal: Bool
    var attachable: Bool
    var ingress = false
    var configFrom = ConfigReference()
    var configOnly = false
    /// Absent in list rows, as dockerd (API ≥ 1.28) leaves them out there.
    var containers: [String: Member]?
    var options: [String: String]
    var labels: [String: String]

    enum CodingKeys: String, CodingKey {
        case name = "Name", id = "Id", created = "Created", scope = "Scope", driver = "Driver"
        case enableIPv4 = "EnableIPv4", enableIPv6 = "EnableIPv6", ipam = "IPAM", isInternal = "Internal"
        case attachable = "Attachable", ingress = "Ingress", configFrom = "ConfigFrom", configOnly = "ConfigOnly"
        case containers = "Containers", options = "Options", labels = "Labels"
    }

    init(_ d: NetworkDetails, withContainers: Bool) {
        let n = d.definition
        name = n.name
        id = n.id
        created = n.created
        driver = n.driver.rawValue
        enableIPv6 = n.enableIPv6
        var config: [IPAMConfig] = []
        if let subnet = n.subnet {
            config.append(IPAMConfig(subnet: subnet.description, ipRange: n.ipRange?.description, gateway: n.gateway?.description))
        }
        if let subnet6 = n.subnet6 {
            config.append(IPAMConfig(subnet: subnet6.description, gateway: n.gateway6?.description))
        }
        ipam = IPAM(options: n.ipamOptions, config: config)
        isInternal = n.isInternal
        attachable = n.attachable
        options = n.options
        labels = n.labels
        if withContainers {
            var members: [String: Member] = [:]
            for m in d.members {
                let ep = m.endpoint
                members[m.containerID] = Member(name: m.name, endpointID: ep.endpointID, macAddress: ep.macAddress,
                                                ipv4Address: ep.ipv4.map { "\($0)/\(ep.prefixLength)" } ?? "",
                                                ipv6Address: ep.ipv6.map { "\($0)/\(ep.prefixLength6 ?? 64)" } ?? "")
            }
            containers = members
        }
    }
}

/// `POST /networks/create`'s body (`network.CreateRequest`).
struct DockerNetworkCreateRequest: Decodable, Sendable {
    struct IPAMConfig: Decodable, Sendable {
        var subnet: String?
        var ipRange: String?
        var gateway: String?
        enum CodingKeys: String, CodingKey { case subnet = "Subnet", ipRange = "IPRange", gateway = "Gateway" }
    }
    struct IPAM: Decodable, Sendable {
        var driver: String?
        var config: [IPAMConfig]?
        var options: [String: String]?
        enum CodingKeys: String, CodingKey { case driver = "Driver", config = "Config", options = "Options" }
    }
    var name: String
    var driver: String?
    var isInternal: Bool?
    var attachable: Bool?
    var ingress: Bool?
    var enableIPv6: Bool?
    var ipam: IPAM?
    var options: [String: String]?
    var labels: [String: String]?
    enum CodingKeys: String, CodingKey {
        case name = "Name", driver = "Driver", isInternal = "Internal", attachable = "Attachable", ingress = "Ingress"
        case enableIPv6 = "EnableIPv6", ipam = "IPAM", options = "Options", labels = "Labels"
    }
}

struct DockerNetworkCreateResponse: Encodable, Sendable {
    var id: String
    var warning = ""
    enum CodingKeys: String, CodingKey { case id = "Id", warning = "Warning" }
}

/// `POST /networks/{id}/connect`'s body.
struct DockerNetworkConnectRequest: Decodable, Sendable {
    var container: String
    var endpointConfig: DockerNetworkingConfig.EndpointSettings?
    enum CodingKeys: String, CodingKey { case container = "Container", endpointConfig = "EndpointConfig" }
}

struct DockerNetworkDisconnectRequest: Decodable, Sendable {
    var container: String
    var force: Bool?
    enum CodingKeys: String, CodingKey { case container = "Container", force = "Force" }
}

struct DockerNetworkPruneResponse: Encodable, Sendable {
    var networksDeleted: [String]
    enum CodingKeys: String, CodingKey { case networksDeleted = "NetworksDeleted" }
}
