import CBerthSys
import Glibc

/// A directory tree that a container or an image controls (a layer, a live root filesystem, a
/// volume), opened once. Every path under it is resolved by the kernel as if the directory were
/// `/` (openat2 with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS): neither a symlink, absolute or
/// relative, nor `..`, nor a /proc magic link leads out of it, so nothing opened here is ever a
/// host file. Files are read without opening anything that is not a regular file (a fifo would
/// block, a device could be /dev/zero or have side effects on open), and with a size cap.
public final class ContainedRoot: Sendable {
    /// An O_PATH descriptor of the root directory.
    public let fd: Int32
    /// The root's host path, for messages only.
    public let path: String

    /// What to do with a symlink as the last component of a path.
    public enum FinalSymlink: Sendable {
        /// Follow it, still inside the root (as Docker's FollowSymlinkInScope does).
        case followInRoot
        /// Open the symlink itself (O_NOFOLLOW): reads and writes refuse it.
        case refuse
    }

    /// Opens `path` (a host path the caller trusts, such as a layer directory) as the root.
    public init(_ path: String) throws(SystemError) {
        let fd = Glibc.open(path, FileSystem.pathOnly | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError("open \(path)") }
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }

    // MARK: Opening

    /// A descriptor of `path` resolved inside the root; the caller closes it. `flags` are
    /// open(2)'s; O_CLOEXEC is added, and O_NOFOLLOW with `.refuse`. Opening with plain
    /// O_RDONLY or O_WRONLY opens whatever is there, a fifo or device included: use O_PATH,
    /// O_DIRECTORY or `readFile` unless the type was checked. A missing path throws ENOENT.
    public func open(_ path: String, _ flags: Int32, mode: mode_t = 0,
                     finalSymlink: FinalSymlink = .refuse) throws(SystemError) -> Int32 {
        let r = Self.openat2(fd, Self.relative(path), flags: flags | O_CLOEXEC | (finalSymlink == .refuse ? O_NOFOLLOW : 0),
                             mode: mode)
        guard r >= 0 else { throw SystemError("open \(path) in \(self.path)") }
        return r
    }

    /// `stat` of `path` inside the root (the last symlink not followed with `.refuse`); nil
    /// when a component is missing or not a directory.
    public func status(_ path: String, finalSymlink: FinalSymlink = .refuse) throws(SystemError) -> stat? {
        guard let fd = try openIfPresent(path, FileSystem.pathOnly, finalSymlink: finalSymlink) else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SystemError("stat \(path) in \(self.path)") }
        return st
    }

    /// The directory at `path` (symlinks on the way resolved inside the root), opened for
    /// reading its entries; nil when missing or not a directory. The caller closes it.
    public func openDirectory(_ path: String) throws(SystemError) -> Int32? {
        try openIfPresent(path, O_RDONLY | O_DIRECTORY, finalSymlink: .followInRoot)
    }

    // MARK: Reading

    /// The content of the regular file at `path`, or nil when it does not exist. Throws when it
    /// is anything but a regular file (a symlink too, with `.refuse`) or holds more than `limit`
    /// bytes. Never opens a fifo or a device: the path is opened O_PATH, checked with fstat and
    /// only then reopened for reading through that very descriptor.
    public func readFile(_ path: String, limit: Int, finalSymlink: FinalSymlink = .refuse) throws(SystemError) -> [UInt8]? {
        guard let handle = try openIfPresent(path, FileSystem.pathOnly, finalSymlink: finalSymlink) else { return nil }
        defer { close(handle) }
        var st = stat()
        guard fstat(handle, &st) == 0 else { throw SystemError("stat \(path) in \(self.path)") }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw SystemError("\(path) in \(self.path) is \(Self.describe(st.st_mode)), not a regular file", errno: 0)
        }
        guard st.st_size <= limit else { throw Self.tooLarge(path, in: self.path, limit: limit) }
        // The O_PATH descriptor pins the inode that was checked; /proc/self/fd reopens exactly it.
        let fd = Glibc.open("/proc/self/fd/\(handle)", O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError("reopen \(path) in \(self.path)") }
        defer { close(fd) }
        // A live container may append meanwhile: read at most one byte past the cap.
        var out: [UInt8] = []
        out.reserveCapacity(min(Int(st.st_size), limit) + 1)
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while out.count <= limit {
            let want = min(chunk.count, limit + 1 - out.count)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, want) }
            if n < 0 && Glibc.errno == EINTR { continue }
            guard n >= 0 else { throw SystemError("read \(path) in \(self.path)") }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        guard out.count <= limit else { throw Self.tooLarge(path, in: self.path, limit: limit) }
        return out
    }

    /// The extended attribute `name` of `path` (the last symlink not followed with `.refuse`),
    /// at most 4 KiB; nil when the path or the attribute is missing. Read through an O_PATH
    /// descriptor, so nothing is opened.
    public func extendedAttribute(_ path: String, _ name: String,
                                  finalSymlink: FinalSymlink = .refuse) throws(SystemError) -> [UInt8]? {
        guard let handle = try openIfPresent(path, FileSystem.pathOnly, finalSymlink: finalSymlink) else { return nil }
        defer { close(handle) }
        var value = [UInt8](repeating: 0, count: 4096)
        // getxattr through the magic link reaches the inode without following a symlink at it.
        let n = getxattr("/proc/self/fd/\(handle)", name, &value, value.count)
        if n < 0 {
            if Glibc.errno == ENODATA || Glibc.errno == ENOTSUP { return nil }
            throw SystemError("read attribute \(name) of \(path) in \(self.path)")
        }
        return Array(value[0..<n])
    }

    // MARK: Writing

    /// Replaces (or creates) the file at `path` with `bytes`: written to a new file beside it
    /// and renamed over it, so whatever stood there (a symlink, a fifo, a hard link to another
    /// file) is replaced, never opened or written through. The parent must exist.
    public func writeFile(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws(SystemError) {
        let (parentPath, name) = Self.split(path)
        guard !name.isEmpty, name != ".", name != ".." else {
            throw SystemError("write \(path) in \(self.path): not a file name", errno: EINVAL)
        }
        let parent = try open(parentPath, O_RDONLY | O_DIRECTORY, finalSymlink: .followInRoot)
        defer { close(parent) }
        let temp = ".\(name).berth-\(UInt64.random(in: 0...UInt64.max))"
        let fd = openat(parent, temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw SystemError("create \(path) in \(self.path)") }
        do throws(SystemError) {
            try FileSystem.writeAll(fd, bytes, what: "\(path) in \(self.path)")
            guard fchmod(fd, mode) == 0 else { throw SystemError("chmod \(path) in \(self.path)") }
            close(fd)
            guard renameat(parent, temp, parent, name) == 0 else { throw SystemError("rename into \(path) in \(self.path)") }
        } catch {
            close(fd)
            unlinkat(parent, temp, 0)
            throw error
        }
    }

    /// `mkdir -p` of `path` inside the root: each missing directory is made relative to its
    /// parent's descriptor, and every prefix is resolved again from the root, so symlinks on
    /// the way (even one swapped in meanwhile) resolve inside it. Returns an O_PATH descriptor
    /// of the last directory, which the caller closes.
    public func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(SystemError) -> Int32 {
        var dir = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard dir >= 0 else { throw SystemError("dup \(self.path)") }
        var prefix = ""
        for part in Self.relative(path).split(separator: "/") {
            prefix += prefix.isEmpty ? String(part) : "/" + part
            var next = Self.openat2(fd, prefix, flags: FileSystem.pathOnly | O_DIRECTORY | O_CLOEXEC, mode: 0)
            if next < 0 && Glibc.errno == ENOENT {
                // The last component is missing (a missing one before it would have been made).
                if mkdirat(dir, String(part), mode) != 0 && Glibc.errno != EEXIST {
                    let e = SystemError("mkdir \(prefix) in \(self.path)")
                    close(dir)
                    throw e
                }
                next = Self.openat2(fd, prefix, flags: FileSystem.pathOnly | O_DIRECTORY | O_CLOEXEC, mode: 0)
            }
            guard next >= 0 else {
                let e = SystemError("mkdir \(prefix) in \(self.path)")
                close(dir)
                throw e
            }
            close(dir)
            dir = next
        }
        return dir
    }

    // MARK: Pieces

    /// O_PATH, hidden from Swift behind _GNU_SOURCE.

    private static func tooLarge(_ path: String, in root: String, limit: Int) -> SystemError {
        SystemError("\(path) in \(root) is larger than \(limit) bytes", errno: EFBIG)
    }

    private func openIfPresent(_ path: String, _ flags: Int32, finalSymlink: FinalSymlink) throws(SystemError) -> Int32? {
        do { return try open(path, flags, finalSymlink: finalSymlink) } catch {
            // ENOTDIR: a component on the way (or, with O_DIRECTORY, the last) is not a directory.
            if error.errno == ENOENT || error.errno == ENOTDIR { return nil }
            throw error
        }
    }

    static func describe(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: "a directory"
        case S_IFLNK: "a symlink"
        case S_IFIFO: "a fifo"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFSOCK: "a socket"
        default: "a special file"
        }
    }

    /// `path` without its leading slashes; "." for the root itself.
    static func relative(_ path: String) -> String {
        let trimmed = path.drop { $0 == "/" }
        return trimmed.isEmpty ? "." : String(trimmed)
    }

    /// The parent (relative to the root) and the last component of `path`.
    static func split(_ path: String) -> (parent: String, name: String) {
        let parts = relative(path).split(separator: "/")
        guard let last = parts.last else { return (".", "") }
        return (parts.dropLast().isEmpty ? "." : parts.dropLast().joined(separator: "/"), String(last))
    }

    /// openat2 with `dir` as the root: nothing resolves outside it.
    private static func openat2(_ dir: Int32, _ path: String, flags: Int32, mode: mode_t) -> Int32 {
        berth_openat2(dir, path, flags, UInt32(mode), UInt64(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS))
    }
}
