import CBerthNet

/// A network interface as the kernel reports it.
public struct Link: Sendable, Equatable {
    public var index: Int32
    public var name: String
    /// The rtnetlink kind: "bridge", "veth", "macvlan", ...; nil for physical devices and loopback.
    public var kind: String?
    public var mtu: UInt32
    /// Lower-case "02:42:ac:11:00:02"; "" for links without a hardware address.
    public var mac: String
    public var isUp: Bool
    /// The index of the bridge (or other master) this link is enslaved to.
    public var masterIndex: Int32?

    public init(index: Int32, name: String, kind: String?, mtu: UInt32, mac: String, isUp: Bool, masterIndex: Int32?) {
        self.index = index
        self.name = name
        self.kind = kind
        self.mtu = mtu
        self.mac = mac
        self.isUp = isUp
        self.masterIndex = masterIndex
    }

    init(_ raw: berth_link) {
        let kind = cString(raw.kind)
        self.init(index: raw.index, name: cString(raw.name), kind: kind.isEmpty ? nil : kind, mtu: raw.mtu,
                  mac: cString(raw.mac), isUp: raw.up != 0, masterIndex: raw.master == 0 ? nil : raw.master)
    }
}

/// A route of the main table.
public struct Route: Sendable, Equatable {
    /// CIDR; "0.0.0.0/0" (or "::/0") for the default route.
    public var destination: String
    public var gateway: String?
    public var device: String?

    public init(destination: String, gateway: String?, device: String?) {
        self.destination = destination
        self.gateway = gateway
        self.device = device
    }

    init(_ raw: berth_route) {
        let gateway = cString(raw.gateway), device = cString(raw.device)
        self.init(destination: cString(raw.destination), gateway: gateway.isEmpty ? nil : gateway,
                  device: device.isEmpty ? nil : device)
    }
}

/// A NUL-terminated C char array imported as a tuple.
func cString<Tuple>(_ tuple: Tuple) -> String {
    withUnsafeBytes(of: tuple) { raw in
        let bytes = raw.prefix { $0 != 0 }
        return String(decoding: bytes, as: UTF8.self)
    }
}
