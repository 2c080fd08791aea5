import CBerthNet
import Glibc
import Synchronization

/// One rtnetlink socket, opened in the current network namespace or in the one pinned at
/// `namespace`. A netlink socket stays bound to the namespace it was created in, so after
/// `init` every call works on that namespace from any thread. Calls are serialized.
public final class Netlink: Sendable {
    private let socket: Mutex<OpaquePointer>
    /// The namespace path this socket was opened in, nil for the caller's own.
    public let namespace: String?

    public init(namespace: String? = nil) throws(NetlinkError) {
        var sk: OpaquePointer?
        try check(berth_nl_open(namespace, &sk),
                  "cannot open a netlink socket" + (namespace.map { " in network namespace \($0)" } ?? ""))
        self.socket = Mutex(sk!)
        self.namespace = namespace
    }

    deinit {
        socket.withLock { berth_nl_close($0) }
    }

    // MARK: Links

    public func links() throws(NetlinkError) -> [Link] {
        var items: UnsafeMutablePointer<berth_link>?
        var count = 0
        try call("cannot list links") { berth_link_list($0, &items, &count) }
        defer { free(items) }
        return (0..<count).map { Link(items![$0]) }
    }

    /// The link called `name`, or nil; one RTM_GETLINK request.
    public func link(named name: String) throws(NetlinkError) -> Link? {
        try LinkName.validate(name, what: "cannot look up link")
        var raw = berth_link()
        let result = socket.withLock { berth_link_get($0, name, &raw) }
        if result != 0 {
            let error = NetlinkError(result: result, "cannot look up link \(name)")
            if error.code == .notFound { return nil }
            throw error
        }
        return Link(raw)
    }

    /// `.exists` if a link called `name` already exists. Without `mac`, the kernel gives the
    /// bridge the lowest MAC of its ports, which changes as containers come and go.
    public func addBridge(name: String, mac: String? = nil, mtu: UInt32? = nil) throws(NetlinkError) {
        try LinkName.validate(name, what: "cannot add bridge")
        try call("cannot add bridge \(name)") { berth_link_add_bridge($0, name, mac, mtu ?? 0) }
    }

    /// Creates a veth pair: `name` here, `peer` created directly inside the namespace pinned at
    /// `peerNamespace` (or here when nil), with `peerMAC` on the peer and `mtu` on both ends.
    public func addVeth(name: String, peer: String, peerNamespace: String?, peerMAC: String? = nil,
                        mtu: UInt32? = nil) throws(NetlinkError) {
        let what = "cannot add veth pair \(name)/\(peer)" + (peerNamespace.map { " (peer in \($0))" } ?? "")
        try LinkName.validate(name, what: what)
        try LinkName.validate(peer, what: what)
        try withNamespaceFD(peerNamespace, what) { (fd) throws(NetlinkError) in
            try call(what) { berth_link_add_veth($0, name, peer, fd, peerMAC, mtu ?? 0) }
        }
    }

    /// Creates a macvlan in bridge mode on `parent` (a link here) and places it inside the
    /// namespace pinned at `namespace` (or here when nil) under `name`.
    public func addMacvlan(name: String, parent: String, namespace: String?, mac: String? = nil,
                           mtu: UInt32? = nil) throws(NetlinkError) {
        let what = "cannot add macvlan \(name) on \(parent)" + (namespace.map { " (in \($0))" } ?? "")
        try LinkName.validate(name, what: what)
        try LinkName.validate(parent, what: what)
        try withNamespaceFD(namespace, what) { (fd) throws(NetlinkError) in
            try call(what) { berth_link_add_macvlan($0, name, parent, fd, mac, mtu ?? 0) }
        }
    }

    /// Deletes the link; false if it did not exist.
    @discardableResult
    public func deleteLink(name: String) throws(NetlinkError) -> Bool {
        try LinkName.validate(name, what: "cannot delete link")
        let result = socket.withLock { berth_link_delete($0, name) }
        if result == 0 { return true }
        let error = NetlinkError(result: result, "cannot delete link \(name)")
        if error.code == .notFound { return false }
        throw error
    }

    public func setMaster(_ name: String, bridge: String) throws(NetlinkError) {
        try LinkName.validate(name, what: "cannot attach link to bridge \(bridge)")
        try LinkName.validate(bridge, what: "cannot attach link \(name) to bridge")
        try call("cannot attach link \(name) to bridge \(bridge)") { berth_link_set_master($0, name, bridge) }
    }

    /// Lets a bridge port send frames back where they came from (hairpin mode).
    public func setHairpin(_ name: String, _ on: Bool) throws(NetlinkError) {
        try LinkName.validate(name, what: "cannot set hairpin mode")
        try call("cannot set hairpin mode on \(name)") { berth_link_set_hairpin($0, name, on ? 1 : 0) }
    }

    public func setUp(_ name: String) throws(NetlinkError) {
        try LinkName.validate(name, what: "cannot set link up")
        try call("cannot set link \(name) up") { berth_link_set_up($0, name) }
    }

    public func setMTU(_ name: String, _ mtu: UInt32) throws(NetlinkError) {
        try LinkName.validate(name, what: "cannot set MTU \(mtu)")
        try call("cannot set MTU \(mtu) on link \(name)") { berth_link_set_mtu($0, name, mtu) }
    }

    // MARK: Addresses

    /// Adds an address given as CIDR ("172.18.0.1/16", "fd00::1/64"); `.exists` if already there.
    /// IPv4 addresses get their subnet's broadcast address, as Docker sets them.
    public func addAddress(_ name: String, cidr: String) throws(NetlinkError) {
        let what = "cannot add address \(cidr) to link \(name)"
        try LinkName.validate(name, what: what)
        try CIDR.validate(cidr, what: what)
        try call(what) { berth_addr_add($0, name, cidr) }
    }

    /// The link's addresses as CIDRs ("172.18.0.1/16"), IPv4 and IPv6.
    public func addresses(_ name: String) throws(NetlinkError) -> [String] {
        var items: UnsafeMutablePointer<berth_addr>?
        var count = 0
        try LinkName.validate(name, what: "cannot list addresses")
        try call("cannot list addresses of link \(name)") { berth_addr_list($0, name, &items, &count) }
        defer { free(items) }
        return (0..<count).map { cString(items![$0].cidr) }
    }

    // MARK: Routes

    /// Adds a route to the main table; "0.0.0.0/0" (or "::/0") is the default route. `device`
    /// may be nil when `gateway` is given. `.exists` if the same route is already there.
    public func addRoute(destination: String, gateway: String?, device: String?) throws(NetlinkError) {
        let what = "cannot add route to \(destination)" + (gateway.map { " via \($0)" } ?? "")
            + (device.map { " dev \($0)" } ?? "")
        try CIDR.validate(destination, what: what)
        if let gateway { try CIDR.validateAddress(gateway, what: what) }
        if let device { try LinkName.validate(device, what: what) }
        if gateway == nil && device == nil {
            throw NetlinkError(.invalidArgument, "\(what): give a gateway, a device or both")
        }
        try call(what) { berth_route_add($0, destination, gateway, device) }
    }

    /// The main table's IPv4 and IPv6 routes.
    public func routes() throws(NetlinkError) -> [Route] {
        var items: UnsafeMutablePointer<berth_route>?
        var count = 0
        try call("cannot list routes") { berth_route_list($0, &items, &count) }
        defer { free(items) }
        return (0..<count).map { Route(items![$0]) }
    }

    // MARK: Helpers

    private func call(_ what: @autoclosure () -> String, _ body: (OpaquePointer) -> Int32) throws(NetlinkError) {
        let result = socket.withLock { body($0) }
        try check(result, what())
    }

    /// Opens the pinned namespace for IFLA_NET_NS_FD (-1 when nil) for the duration of `body`.
    private func withNamespaceFD(_ path: String?, _ what: String,
                                 _ body: (Int32) throws(NetlinkError) -> Void) throws(NetlinkError) {
        guard let path else { return try body(-1) }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw NetlinkError(result: errno, "\(what): cannot open network namespace \(path)") }
        defer { close(fd) }
        try body(fd)
    }
}
