import BerthOCI
import BerthOS
import Glibc

/// What one layer's unpack did.
public struct UnpackSummary: Sendable, Equatable {
    /// Tar entries processed (whiteouts included).
    public var entries = 0
    /// Length of the uncompressed tar stream, which `diffID` hashes.
    public var tarBytes: Int64 = 0
    /// Bytes of regular-file content written.
    public var contentBytes: Int64 = 0
    /// sha256 of the uncompressed tar stream (image-spec config.md "DiffID").
    public var diffID: Digest
    public var compression: LayerCompression
    /// Metadata the filesystem refused (an xattr it does not support); the unpack went on.
    public var warnings: [String] = []
}

/// How a layer's whiteouts (image-spec layer.md "Whiteouts") end up on disk.
public enum WhiteoutFormat: Sendable {
    /// As overlayfs expects in a lower directory: `.wh.x` becomes a 0/0 character device `x`,
    /// `.wh..wh..opq` the xattr `trusted.overlay.opaque=y` on its directory. For one layer
    /// per directory, stacked by the `Snapshotter`.
    case overlay
    /// Applied to what is already in the directory: `.wh.x` deletes `x`, `.wh..wh..opq`
    /// deletes the directory's entries that this layer did not add. For flattening layers.
    case apply
}

/// Applies layer tars (image-spec layer.md) to directories, treating every tar as hostile:
/// no entry can create, change or delete anything outside the destination.
///
/// - Entry names are cleaned like Go's `filepath.Clean`: `/abs` is taken relative to the
///   root, a `..` that climbs above the root makes the unpack fail.
/// - Parent directories are opened one component at a time from a root descriptor with
///   `O_NOFOLLOW | O_DIRECTORY`; a symlink met on the way is resolved as if the root were `/`
///   (what `openat2(RESOLVE_IN_ROOT)` does) and the final component is never followed: an
///   entry replaces a symlink in its place rather than writing through it.
/// - Hardlink targets are resolved the same way, and one that climbs out is refused.
/// - `unpack` and `flatten` build a fresh directory beside the destination and rename it into
///   place only after the whole stream applied and its DiffID matched.
public struct LayerUnpacker: Sendable {
    public var whiteouts: WhiteoutFormat
    /// Apply numeric owners from the tar (needs CAP_CHOWN); off when not running as root.
    public var preserveOwnership: Bool

    public init(whiteouts: WhiteoutFormat = .overlay, preserveOwnership: Bool = geteuid() == 0) {
        self.whiteouts = whiteouts
        self.preserveOwnership = preserveOwnership
    }

    /// Unpacks one layer (plain, gzip or zstd tar read from `fd`) into `destination`, which must
    /// not exist. With `expectedDiffID`, a different DiffID fails the unpack and leaves nothing.
    public func unpack(fd: Int32, into destination: String, expectedDiffID: Digest? = nil) throws -> UnpackSummary {
        try build(destination) { rootFD in
            let s = try LayerApplier(rootFD: rootFD, format: whiteouts, chown: preserveOwnership)
                .apply(TarReader(fd: fd, what: "layer"))
            if let expectedDiffID, s.diffID != expectedDiffID {
                throw ImageError.invalid("layer DiffID mismatch: expected \(expectedDiffID), got \(s.diffID)")
            }
            return s
        }
    }

    public func unpack(path: String, into destination: String, expectedDiffID: Digest? = nil) throws -> UnpackSummary {
        let fd = try FD.open(path, O_RDONLY)
        defer { close(fd) }
        return try unpack(fd: fd, into: destination, expectedDiffID: expectedDiffID)
    }

    /// Applies several layers, bottom first, onto one fresh `destination` with whiteouts
    /// applied as deletions (the `whiteouts` setting is ignored): a flattened root filesystem.
    public func flatten(layers fds: [Int32], into destination: String,
                        expectedDiffIDs: [Digest]? = nil) throws -> [UnpackSummary] {
        if let expectedDiffIDs, expectedDiffIDs.count != fds.count {
            throw ImageError.invalid("\(fds.count) layers but \(expectedDiffIDs.count) DiffIDs")
        }
        return try build(destination) { rootFD in
            var out: [UnpackSummary] = []
            for (i, fd) in fds.enumerated() {
                let s = try LayerApplier(rootFD: rootFD, format: .apply, chown: preserveOwnership)
                    .apply(TarReader(fd: fd, what: "layer \(i)"))
                if let expected = expectedDiffIDs?[i], s.diffID != expected {
                    throw ImageError.invalid("layer \(i) DiffID mismatch: expected \(expected), got \(s.diffID)")
                }
                out.append(s)
            }
            return out
        }
    }

    private func build<T>(_ destination: String, _ body: (Int32) throws -> T) throws -> T {
        let dest = FileSystem.absolute(destination)
        guard dest != "/" else { throw ImageError.invalid("cannot unpack onto /") }
        var st = stat()
        if lstat(dest, &st) == 0 { throw ImageError.conflict("\(dest) already exists") }
        let slash = dest.lastIndex(of: "/")!
        let parent = slash == dest.startIndex ? "/" : String(dest[..<slash])
        let base = String(dest[dest.index(after: slash)...])
        try os { () throws(SystemError) in try FileSystem.makeDirectories(parent, mode: 0o700) }
        let temp = parent + "/." + base + ".unpack-" + FD.randomSuffix()
        guard mkdir(temp, 0o755) == 0 else { throw ImageError.system("mkdir \(temp)", errno: errno) }
        do {
            let rootFD = try FD.open(temp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
            let result: T
            do { result = try body(rootFD) } catch { close(rootFD); throw error }
            close(rootFD)
            if rename(temp, dest) != 0 {
                let e = errno
                if e == EEXIST || e == ENOTEMPTY { throw ImageError.conflict("\(dest) already exists") }
                throw ImageError.system("rename \(temp) to \(dest)", errno: e)
            }
            return result
        } catch {
            try? Tree.removeAll(AT_FDCWD, Tree.cName(temp))
            throw error
        }
    }
}

/// Removal of trees through descriptors, never following a symlink.
enum Tree {
    static func cName(_ s: String) -> [CChar] { s.utf8CString.map { $0 } }
    static func cName(_ bytes: [UInt8]) -> [CChar] { bytes.map { CChar(bitPattern: $0) } + [0] }
    static func text(_ name: [CChar]) -> String { String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }

    static func entries(_ fd: Int32) throws -> [[CChar]] {
        let copy = dup(fd)
        guard copy >= 0, let dir = fdopendir(copy) else {
            if copy >= 0 { close(copy) }
            throw ImageError.system("read directory", errno: errno)
        }
        defer { closedir(dir) }
        rewinddir(dir)
        var names: [[CChar]] = []
        while let e = readdir(dir) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw -> [CChar] in
                let p = raw.baseAddress!.assumingMemoryBound(to: CChar.self)
                return Array(UnsafeBufferPointer(start: p, count: strlen(p) + 1))
            }
            if name == [46, 0] || name == [46, 46, 0] { continue }
            names.append(name)
        }
        return names
    }

    /// Removes `name` in `dirFD` and everything below it; a missing entry is not an error.
    static func removeAll(_ dirFD: Int32, _ name: [CChar]) throws {
        do { try FileSystem.removeTree(in: dirFD, name) } catch {
            throw ImageError.system(error)
        }
    }
}

/// One pass of one tar over one root directory.
final class LayerApplier {
    typealias Component = [UInt8]

    private let rootFD: Int32
    private let format: WhiteoutFormat
    private let chown: Bool
    private var summary = UnpackSummary(diffID: try! Digest(hex: String(repeating: "0", count: 64)), compression: .none)
    /// Directory times are set last: creating their children changes them.
    private var directoryTimes: [([Component], timespec)] = []
    /// Paths this layer created (and their parents), which an opaque marker must keep.
    private var unpacked: Set<[Component]> = []

    private static let whiteoutPrefix = Array(".wh.".utf8)
    private static let opaqueMarker = Array(".wh..wh..opq".utf8)
    private static let metaPrefix = Array(".wh..wh.".utf8)
    private static let maxSymlinks = 40

    init(rootFD: Int32, format: WhiteoutFormat, chown: Bool) {
        self.rootFD = rootFD
        self.format = format
        self.chown = chown
    }

    func apply(_ reader: TarReader) throws -> UnpackSummary {
        while let h = try reader.next() {
            summary.entries += 1
            try entry(h, reader)
        }
        let (digest, size) = try reader.finish()
        summary.diffID = digest
        summary.tarBytes = size
        summary.compression = reader.compression
        for (path, time) in directoryTimes.reversed() { setDirectoryTime(path, time) }
        return summary
    }

    // MARK: Paths

    /// Cleans a tar name like Go's filepath.Clean: `.` and empty parts dropped, `..` folded,
    /// `..` at an absolute root dropped; a relative name that climbs above the root is refused.
    static func clean(_ raw: [UInt8], what: String) throws -> [Component] {
        let absolute = raw.first == UInt8(ascii: "/")
        var out: [Component] = []
        for part in raw.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            if part.elementsEqual([46]) { continue }
            if part.elementsEqual([46, 46]) {
                if out.popLast() == nil && !absolute {
                    throw ImageError.invalid("\(what) \"\(String(decoding: raw, as: UTF8.self))\" escapes the layer root")
                }
                continue
            }
            out.append(Array(part))
        }
        return out
    }

    /// Opens the directory at `path` under the root, resolving symlinks inside the root and
    /// creating missing directories (0755, root-owned, as Docker does) when `create` is set.
    /// Nil when it does not exist and `create` is off.
    private func openDirectory(_ path: ArraySlice<Component>, create: Bool) throws -> Int32? {
        var stack: [Int32] = [dup(rootFD)]
        defer { for fd in stack.dropLast() { close(fd) } }
        var pending = Array(path.reversed())
        var links = 0
        while let c = pending.popLast() {
            if c.isEmpty || c == [46] { continue }
            if c == [46, 46] {
                if stack.count > 1 { close(stack.removeLast()) }
                continue
            }
            let cur = stack.last!
            let name = Tree.cName(c)
            var fd = openat(cur, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if fd < 0 && errno == ENOENT {
                guard create else {
                    close(stack.removeLast())
                    return nil
                }
                if mkdirat(cur, name, 0o755) != 0 && errno != EEXIST {
                    throw ImageError.system("mkdir \(display(path))", errno: errno)
                }
                fd = openat(cur, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if fd >= 0 { fchmod(fd, 0o755) }
            }
            if fd >= 0 {
                stack.append(fd)
                continue
            }
            let e = errno
            var st = stat()
            if (e == ELOOP || e == ENOTDIR) && fstatat(cur, name, &st, AT_SYMLINK_NOFOLLOW) == 0
                && st.st_mode & S_IFMT == S_IFLNK {
                links += 1
                if links > Self.maxSymlinks { throw ImageError.invalid("too many levels of symlinks in \(display(path))") }
                let target = try readLink(cur, name)
                if target.first == UInt8(ascii: "/") {
                    for fd in stack.dropFirst() { close(fd) }
                    stack = [stack[0]]
                }
                pending.append(contentsOf: target.split(separator: UInt8(ascii: "/")).map(Array.init).reversed())
                continue
            }
            if e == ENOTDIR || e == ELOOP {
                throw ImageError.invalid("\(display(path)): \(String(decoding: c, as: UTF8.self)) is not a directory")
            }
            throw ImageError.system("open \(display(path))", errno: e)
        }
        return stack.last!
    }

    private func readLink(_ dirFD: Int32, _ name: [CChar]) throws -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = buf.withUnsafeMutableBufferPointer { b in
            b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) { readlinkat(dirFD, name, $0, b.count) }
        }
        guard n >= 0 else { throw ImageError.system("readlink", errno: errno) }
        return Array(buf[0..<n])
    }

    private func display(_ path: some Collection<Component>) -> String {
        path.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "/")
    }

    // MARK: Entries

    private func entry(_ h: TarHeader, _ reader: TarReader) throws {
        let path = try Self.clean(h.rawPath, what: "entry")
        guard let base = path.last else {
            // The layer's root directory itself: only its metadata applies.
            if h.kind == .directory { try metadata(h, fd: rootFD, path: []) }
            return
        }
        let parentPath = path.dropLast()
        if base.starts(with: Self.whiteoutPrefix) { return try whiteout(h, parentPath, base) }
        guard let dirFD = try openDirectory(parentPath, create: true) else { return }
        defer { close(dirFD) }
        let name = Tree.cName(base)
        if format == .apply {
            for i in 1...path.count { unpacked.insert(Array(path.prefix(i))) }
        }
        switch h.kind {
        case .directory:
            var st = stat()
            let exists = fstatat(dirFD, name, &st, AT_SYMLINK_NOFOLLOW) == 0
            if !(exists && st.st_mode & S_IFMT == S_IFDIR) {
                try Tree.removeAll(dirFD, name)
                guard mkdirat(dirFD, name, 0o700) == 0 else { throw ImageError.system("mkdir \(display(path))", errno: errno) }
            }
            let fd = openat(dirFD, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { throw ImageError.system("open \(display(path))", errno: errno) }
            defer { close(fd) }
            try metadata(h, fd: fd, path: path)
        case .regular:
            try Tree.removeAll(dirFD, name)
            let fd = openat(dirFD, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw ImageError.system("create \(display(path))", errno: errno) }
            defer { close(fd) }
            var end: Int64 = 0
            while let (block, offset) = try reader.readBlock() {
                try FD.pwriteAll(fd, block, at: offset, what: display(path))
                end = max(end, offset + Int64(block.count))
                summary.contentBytes += Int64(block.count)
            }
            if end < h.size && ftruncate(fd, off_t(h.size)) != 0 {
                throw ImageError.system("truncate \(display(path))", errno: errno)
            }
            try metadata(h, fd: fd, path: path)
        case .symlink:
            try Tree.removeAll(dirFD, name)
            let target = Tree.cName(h.rawLinkTarget ?? [])
            guard symlinkat(target, dirFD, name) == 0 else { throw ImageError.system("symlink \(display(path))", errno: errno) }
            try metadataAt(h, dirFD: dirFD, name: name, path: path)
        case .hardlink:
            try hardlink(h, dirFD: dirFD, name: name, path: path)
        case .characterDevice, .blockDevice, .fifo:
            try Tree.removeAll(dirFD, name)
            let type: mode_t = h.kind == .fifo ? S_IFIFO : h.kind == .blockDevice ? S_IFBLK : S_IFCHR
            let dev = Self.makedev(h.deviceMajor, h.deviceMinor)
            guard mknodat(dirFD, name, type | 0o600, dev) == 0 else {
                throw ImageError.system("mknod \(display(path))", errno: errno)
            }
            try metadataAt(h, dirFD: dirFD, name: name, path: path)
        case .socket:
            summary.warnings.append("\(display(path)): socket skipped")
        }
    }

    static func makedev(_ major: UInt32, _ minor: UInt32) -> dev_t {
        let ma = UInt64(major), mi = UInt64(minor)
        return dev_t(((ma & 0xffff_f000) << 32) | ((ma & 0xfff) << 8) | ((mi & 0xffff_ff00) << 12) | (mi & 0xff))
    }

    private func hardlink(_ h: TarHeader, dirFD: Int32, name: [CChar], path: [Component]) throws {
        let targetPath = try Self.clean(h.rawLinkTarget ?? [], what: "hardlink target of \(display(path)):")
        guard let targetBase = targetPath.last else {
            throw ImageError.invalid("hardlink \(display(path)) points at the layer root")
        }
        guard let targetDir = try openDirectory(targetPath.dropLast(), create: false) else {
            throw ImageError.invalid("hardlink \(display(path)): target \(display(targetPath)) not found")
        }
        defer { close(targetDir) }
        let targetName = Tree.cName(targetBase)
        var t = stat(), d = stat()
        guard fstatat(targetDir, targetName, &t, AT_SYMLINK_NOFOLLOW) == 0 else {
            throw ImageError.invalid("hardlink \(display(path)): target \(display(targetPath)) not found")
        }
        if t.st_mode & S_IFMT == S_IFDIR {
            throw ImageError.invalid("hardlink \(display(path)): target \(display(targetPath)) is a directory")
        }
        if fstatat(dirFD, name, &d, AT_SYMLINK_NOFOLLOW) == 0 && d.st_dev == t.st_dev && d.st_ino == t.st_ino {
            return
        }
        try Tree.removeAll(dirFD, name)
        guard linkat(targetDir, targetName, dirFD, name, 0) == 0 else {
            throw ImageError.system("link \(display(path)) to \(display(targetPath))", errno: errno)
        }
    }

    private func whiteout(_ h: TarHeader, _ parentPath: ArraySlice<Component>, _ base: Component) throws {
        if base == Self.opaqueMarker {
            switch format {
            case .overlay:
                guard let fd = try openDirectory(parentPath, create: true) else { return }
                defer { close(fd) }
                guard Xattr.set(fd: fd, "trusted.overlay.opaque", Array("y".utf8)) == 0 else {
                    throw ImageError.system("mark \(display(parentPath)) opaque", errno: errno)
                }
            case .apply:
                guard let fd = try openDirectory(parentPath, create: false) else { return }
                defer { close(fd) }
                try clearLower(fd, Array(parentPath))
            }
            return
        }
        // Other `.wh..wh.` names are AUFS bookkeeping (e.g. `.wh..wh.plnk`): nothing to apply.
        if base.starts(with: Self.metaPrefix) { return }
        let target = Array(base.dropFirst(Self.whiteoutPrefix.count))
        if target.isEmpty || target == [46] || target == [46, 46] {
            throw ImageError.invalid("invalid whiteout \(display(parentPath + [base]))")
        }
        let name = Tree.cName(target)
        switch format {
        case .overlay:
            guard let fd = try openDirectory(parentPath, create: true) else { return }
            defer { close(fd) }
            try Tree.removeAll(fd, name)
            guard mknodat(fd, name, S_IFCHR, 0) == 0 else {
                throw ImageError.system("whiteout \(display(parentPath + [target]))", errno: errno)
            }
            if chown { fchownat(fd, name, uid_t(truncatingIfNeeded: h.uid), gid_t(truncatingIfNeeded: h.gid), AT_SYMLINK_NOFOLLOW) }
        case .apply:
            guard let fd = try openDirectory(parentPath, create: false) else { return }
            defer { close(fd) }
            try Tree.removeAll(fd, name)
        }
    }

    /// Opaque directory in apply mode: removes what lower layers put under `path`, keeping
    /// what this layer unpacked there.
    private func clearLower(_ fd: Int32, _ path: [Component]) throws {
        for child in try Tree.entries(fd) {
            let childPath = path + [child.dropLast().map { UInt8(bitPattern: $0) }]
            guard unpacked.contains(childPath) else {
                try Tree.removeAll(fd, child)
                continue
            }
            let sub = openat(fd, child, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if sub >= 0 {
                defer { close(sub) }
                try clearLower(sub, childPath)
            }
        }
    }

    // MARK: Metadata

    /// Owner, then mode (chown clears setuid bits), then xattrs (chown clears
    /// security.capability), then times, on an open file or directory.
    private func metadata(_ h: TarHeader, fd: Int32, path: [Component]) throws {
        if chown && fchown(fd, uid_t(truncatingIfNeeded: h.uid), gid_t(truncatingIfNeeded: h.gid)) != 0 {
            throw ImageError.system("chown \(display(path))", errno: errno)
        }
        guard fchmod(fd, mode_t(h.mode & 0o7777)) == 0 else { throw ImageError.system("chmod \(display(path))", errno: errno) }
        for x in h.xattrs where Self.applicable(x.name) {
            if Xattr.set(fd: fd, x.name, x.value) != 0 { try xattrFailed(x.name, path) }
        }
        let t = timespec(tv_sec: time_t(h.mtime), tv_nsec: h.mtimeNanoseconds)
        if h.kind == .directory {
            directoryTimes.append((path, t))
        } else {
            let times = [t, t]
            futimens(fd, times)
        }
    }

    /// The same for what cannot be opened (symlinks, devices, fifos), by name in its directory.
    private func metadataAt(_ h: TarHeader, dirFD: Int32, name: [CChar], path: [Component]) throws {
        if chown && fchownat(dirFD, name, uid_t(truncatingIfNeeded: h.uid), gid_t(truncatingIfNeeded: h.gid),
                             AT_SYMLINK_NOFOLLOW) != 0 {
            throw ImageError.system("chown \(display(path))", errno: errno)
        }
        if h.kind != .symlink && fchmodat(dirFD, name, mode_t(h.mode & 0o7777), AT_SYMLINK_NOFOLLOW) != 0 {
            throw ImageError.system("chmod \(display(path))", errno: errno)
        }
        if !h.xattrs.isEmpty {
            // The directory is already resolved; /proc/self/fd/N/name does not follow `name`.
            let proc = "/proc/self/fd/\(dirFD)/" + Tree.text(name)
            for x in h.xattrs where Self.applicable(x.name) {
                if Xattr.set(path: proc, x.name, x.value) != 0 { try xattrFailed(x.name, path) }
            }
        }
        let t = timespec(tv_sec: time_t(h.mtime), tv_nsec: h.mtimeNanoseconds)
        let times = [t, t]
        utimensat(dirFD, name, times, AT_SYMLINK_NOFOLLOW)
    }

    /// overlayfs reads its own `trusted.overlay.*` xattrs from lower directories (redirects,
    /// metacopy, opaque): a layer must not smuggle them in.
    private static func applicable(_ name: String) -> Bool { !name.hasPrefix("trusted.overlay.") }

    private func xattrFailed(_ name: String, _ path: [Component]) throws {
        let e = errno
        // Like Docker: a filesystem without support for an xattr namespace is not fatal.
        guard e == ENOTSUP || e == EPERM else { throw ImageError.system("set xattr \(name) on \(display(path))", errno: e) }
        summary.warnings.append("\(display(path)): xattr \(name) not set: \(String(cString: strerror(e)))")
    }

    private func setDirectoryTime(_ path: [Component], _ t: timespec) {
        guard let base = path.last else {
            futimens(rootFD, [t, t])
            return
        }
        guard let dirFD = try? openDirectory(path.dropLast(), create: false) else { return }
        defer { close(dirFD) }
        var st = stat()
        let name = Tree.cName(base)
        guard fstatat(dirFD, name, &st, AT_SYMLINK_NOFOLLOW) == 0, st.st_mode & S_IFMT == S_IFDIR else { return }
        utimensat(dirFD, name, [t, t], AT_SYMLINK_NOFOLLOW)
    }
}
