import BerthOS
import Glibc

/// A container's /etc/passwd and /etc/group, for resolving `--user name` at create and
/// `exec -u name`. The files belong to the image or the running container, so they are read
/// confined to its tree (ContainedRoot): never through a symlink to a host file, never a fifo
/// (which would block the engine) or a device (/dev/zero would fill berthd's memory), and at
/// most `limit` bytes. A file refused so reads as empty, as dockerd ignores a passwd file it
/// cannot open; `ignored` keeps the reason for the error a name lookup then gets.
struct UserDatabase: Sendable {
    var passwd = ""
    var group = ""
    /// Why a file was not used, by its path ("/etc/passwd").
    var ignored: [String: String] = [:]

    /// Far beyond any real passwd or group file; dockerd's parser stops at 64 KiB lines.
    static let limit = 4 << 20

    /// From the image's layer directories (topmost first), before the overlay is mounted.
    init(layers: [String]) {
        passwd = read("/etc/passwd") { () throws(SystemError) in try Engine.readFromLayers(layers, "/etc/passwd", limit: Self.limit) }
        group = read("/etc/group") { () throws(SystemError) in try Engine.readFromLayers(layers, "/etc/group", limit: Self.limit) }
    }

    /// From a running container's mounted root filesystem, which the container may have changed.
    init(rootfs: String) {
        let root: ContainedRoot
        do { root = try ContainedRoot(rootfs) } catch {
            ignored["/etc/passwd"] = error.message
            ignored["/etc/group"] = error.message
            return
        }
        passwd = read("/etc/passwd") { () throws(SystemError) in try root.readFile("/etc/passwd", limit: Self.limit, finalSymlink: .followInRoot) }
        group = read("/etc/group") { () throws(SystemError) in try root.readFile("/etc/group", limit: Self.limit, finalSymlink: .followInRoot) }
    }

    private mutating func read(_ path: String, _ body: () throws(SystemError) -> [UInt8]?) -> String {
        do { return String(decoding: try body() ?? [], as: UTF8.self) } catch {
            ignored[path] = error.message
            return ""
        }
    }

    func user(_ name: String) -> (uid: UInt32, gid: UInt32, additionalGids: [UInt32])? {
        Engine.lookupUser(name, passwd: passwd, group: group)
    }

    func group(_ name: String) -> UInt32? { Engine.lookupGroup(name, group: group) }

    /// Throws when `spec` (`user[:group]`) or `groupAdd` names a user or group that only an
    /// ignored file could resolve, with the reason, instead of the plain "no matching entries".
    func checkNamesResolvable(_ spec: String, groupAdd: [String]) throws(EngineError) {
        let parts = spec.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        if let name = parts.first, !name.isEmpty, UInt32(name) == nil, user(name) == nil, let why = ignored["/etc/passwd"] {
            throw EngineError(.invalidArgument, "unable to find user \(name): the container's passwd file was not read: \(why)")
        }
        for name in (parts.count > 1 ? [parts[1]] : []) + groupAdd where !name.isEmpty && UInt32(name) == nil {
            if group(name) == nil, let why = ignored["/etc/group"] {
                throw EngineError(.invalidArgument, "unable to find group \(name): the container's group file was not read: \(why)")
            }
        }
    }
}
