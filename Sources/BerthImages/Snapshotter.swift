import BerthOCI
import BerthOS
import FoundationEssentials
import Glibc

/// image-spec config.md "Layer ChainID": ChainID(L0) = DiffID(L0),
/// ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)), digests in their `sha256:` form.
public enum ChainID {
    /// The ChainID of every prefix of `diffIDs` (bottom layer first).
    public static func all(_ diffIDs: [Digest]) -> [Digest] {
        var out: [Digest] = []
        for d in diffIDs {
            out.append(out.last.map { Digest.of(Array("\($0.string) \(d.string)".utf8)) } ?? d)
        }
        return out
    }

    /// The ChainID of the whole stack; nil for no layers.
    public static func of(_ diffIDs: [Digest]) -> Digest? { all(diffIDs).last }
}

/// An overlayfs mount for a container's root filesystem, as a value: the caller performs it
/// (`mount("overlay", target, "overlay", 0, options)`).
public struct OverlayMount: Sendable, Hashable, Codable {
    /// Read-only layer directories, topmost first (overlayfs' lowerdir order).
    public var lower: [String]
    public var upper: String
    public var work: String
    public var target: String

    public var type: String { "overlay" }
    public var source: String { "overlay" }

    /// The mount data. overlayfs takes `\` escapes for `:` and `,` in paths.
    public var options: String {
        "lowerdir=" + lower.map(Self.escape).joined(separator: ":") + ",upperdir=" + Self.escape(upper)
            + ",workdir=" + Self.escape(work)
    }

    /// mount(2) copies at most one page of data: with many layers and a long root the
    /// options no longer fit. Then mount with the new mount API instead (fsconfig
    /// "lowerdir+" once per layer, Linux 6.8+), which has no such limit; or keep the root
    /// path short. Not solved here (Docker's overlay2 works around it with short `l/` links).
    public var exceedsMountDataLimit: Bool { options.utf8.count >= Int(getpagesize()) }

    private static func escape(_ path: String) -> String {
        var out = ""
        for c in path {
            if c == "\\" || c == ":" || c == "," { out.append("\\") }
            out.append(c)
        }
        return out
    }
}

/// Unpacked layers and per-container overlay directories, in containerd's "return the mounts,
/// do not perform them" style:
///
///     <root>/layers/<DiffID hex>/fs          one directory per layer, in overlay whiteout format
///     <root>/containers/<id>/{upper,work,merged,snapshot.json}
///
/// A layer unpacked into its own directory depends only on its own content, so it is kept once
/// by DiffID and shared by every image whose stack holds it; a stack is named by its ChainID.
/// Safe for concurrent use in one process: a layer is built in a fresh directory and renamed
/// into place, and the loser of a race drops its copy.
public final class Snapshotter: Sendable {
    public let root: String
    private let unpacker: LayerUnpacker

    public init(root: String, unpacker: LayerUnpacker = LayerUnpacker(whiteouts: .overlay)) throws {
        self.root = FileSystem.absolute(root)
        self.unpacker = unpacker
        try os { () throws(SystemError) in
            try FileSystem.makeDirectories(self.root + "/layers", mode: 0o700)
            try FileSystem.makeDirectories(self.root + "/containers", mode: 0o700)
        }
    }

    /// What a container's snapshot records, so its mount can be rebuilt and its layers kept.
    public struct ContainerSnapshot: Codable, Sendable, Hashable {
        public var layers: [Digest]
        public var chainID: Digest?
        public var mount: OverlayMount
    }

    public func layerDirectory(_ diffID: Digest) -> String { root + "/layers/" + diffID.hex + "/fs" }

    public func hasLayer(_ diffID: Digest) -> Bool { FileSystem.isDirectory(layerDirectory(diffID)) }

    /// Unpacks a layer blob (plain or compressed tar on `fd`) unless it is already there. The
    /// DiffID is verified before the layer becomes visible. Nil when it was already present.
    @discardableResult
    public func unpackLayer(_ diffID: Digest, from fd: Int32) throws -> UnpackSummary? {
        if hasLayer(diffID) { return nil }
        let dir = root + "/layers/" + diffID.hex
        if mkdir(dir, 0o700) != 0 && errno != EEXIST { throw ImageError.system("mkdir \(dir)", errno: errno) }
        do {
            return try unpacker.unpack(fd: fd, into: layerDirectory(diffID), expectedDiffID: diffID)
        } catch let e as ImageError where e.code == .conflict && hasLayer(diffID) {
            return nil
        }
    }

    /// Every unpacked layer.
    public func layers() throws -> [Digest] {
        try names(in: root + "/layers").compactMap { try? Digest(hex: $0) }.sorted()
    }

    /// Creates `<root>/containers/<id>/` with a fresh upper and work directory over `layers`
    /// (DiffIDs bottom first, as in the image config) and returns the mount to perform. Every
    /// layer must be unpacked. `target` defaults to `<root>/containers/<id>/merged`.
    public func prepare(container id: String, layers: [Digest], target: String? = nil) throws -> OverlayMount {
        try Self.validate(id)
        for d in layers where !hasLayer(d) { throw ImageError.notFound("layer \(d) is not unpacked") }
        let dir = containerDirectory(id)
        guard mkdir(dir, 0o700) == 0 else {
            if errno == EEXIST { throw ImageError.conflict("a snapshot for container \(id) already exists") }
            throw ImageError.system("mkdir \(dir)", errno: errno)
        }
        do {
            var lower = layers.reversed().map(layerDirectory)
            if lower.isEmpty {
                // overlayfs needs a lower directory even for an image without layers.
                let empty = dir + "/empty"
                guard mkdir(empty, 0o755) == 0 else { throw ImageError.system("mkdir \(empty)", errno: errno) }
                lower = [empty]
            }
            let mount = OverlayMount(lower: lower, upper: dir + "/upper", work: dir + "/work", target: target ?? dir + "/merged")
            for path in [mount.upper, mount.work] where mkdir(path, 0o755) != 0 {
                throw ImageError.system("mkdir \(path)", errno: errno)
            }
            if target == nil && mkdir(mount.target, 0o755) != 0 { throw ImageError.system("mkdir \(mount.target)", errno: errno) }
            let record = ContainerSnapshot(layers: layers, chainID: ChainID.of(layers), mount: mount)
            let bytes = try JSON.encode(record)
            try os { () throws(SystemError) in try FileSystem.writeAtomically(dir + "/snapshot.json", bytes) }
            return mount
        } catch {
            try? Tree.removeAll(AT_FDCWD, Tree.cName(dir))
            throw error
        }
    }

    /// The snapshot recorded for a container.
    public func snapshot(container id: String) throws -> ContainerSnapshot {
        try Self.validate(id)
        let path = containerDirectory(id) + "/snapshot.json"
        guard FileSystem.exists(path) else { throw ImageError.notFound("no snapshot for container \(id)") }
        return try JSON.decode(ContainerSnapshot.self, from: try os { () throws(SystemError) in try FileSystem.readBytes(path) },
                               what: path)
    }

    public func containers() throws -> [String] {
        try names(in: root + "/containers").filter { !$0.hasPrefix(".") }.sorted()
    }

    /// Deletes a container's upper, work and target directories. The caller unmounts first:
    /// a mounted target makes this fail with EBUSY rather than reach into the lower layers.
    public func remove(container id: String) throws {
        try Self.validate(id)
        let dir = containerDirectory(id)
        guard FileSystem.exists(dir) else { throw ImageError.notFound("no snapshot for container \(id)") }
        // Rename first so a half-removed snapshot is never taken for a live one.
        let doomed = root + "/containers/.removing-" + id + "-" + FD.randomSuffix()
        guard rename(dir, doomed) == 0 else { throw ImageError.system("rename \(dir)", errno: errno) }
        try Tree.removeAll(AT_FDCWD, Tree.cName(doomed))
    }

    /// Removes unpacked layers that neither `keep` nor any container's snapshot uses.
    @discardableResult
    public func prune(keeping keep: Set<Digest>) throws -> [Digest] {
        var used = keep
        for id in try containers() {
            if let s = try? snapshot(container: id) { used.formUnion(s.layers) }
        }
        var removed: [Digest] = []
        for d in try layers() where !used.contains(d) {
            let dir = root + "/layers/" + d.hex
            let doomed = root + "/layers/.removing-" + d.hex + "-" + FD.randomSuffix()
            guard rename(dir, doomed) == 0 else { continue }
            try Tree.removeAll(AT_FDCWD, Tree.cName(doomed))
            removed.append(d)
        }
        return removed
    }

    private func containerDirectory(_ id: String) -> String { root + "/containers/" + id }

    private func names(in path: String) throws -> [String] {
        let fd = try FD.open(path, O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        return try Tree.entries(fd).map(Tree.text)
    }

    /// Container IDs become path components: letters, digits, `_.-`, not starting with `.`.
    static func validate(_ id: String) throws {
        let ok = !id.isEmpty && id.utf8.count <= 128 && id.first != "." && id.first != "-"
            && id.utf8.allSatisfy { c in
                (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x5f || c == 0x2e || c == 0x2d
            }
        if !ok { throw ImageError.invalid("invalid container ID \"\(id)\": use letters, digits, '_', '.', '-'") }
    }
}
