import CBerthSys
import BerthOS
import Glibc

/// Copies a directory tree between directory descriptors without ever following a symlink:
/// each entry is opened with O_NOFOLLOW relative to its parent's descriptor, symlinks are
/// recreated rather than read through, and metadata goes onto what was opened. Only the start
/// path is resolved through symlinks, and then by the kernel inside the source root
/// (ContainedRoot: openat2's RESOLVE_IN_ROOT), so a hostile image can neither read nor write
/// outside its tree. The destination may be a volume a running container shares: everything
/// is created exclusively (O_EXCL, mkdirat, mknodat) and changed through the descriptor of what
/// was created, so an entry swapped for a symlink or a hard link meanwhile fails the copy
/// rather than redirecting it. Holes in sparse files stay holes.
enum TreeCopy {
    /// Deeper trees are refused (copy) or not counted (size): each level holds descriptors
    /// and a stack frame, and a container can nest directories without limit.
    static let maxDepth = DirectorySize.maxDepth
    /// O_PATH and AT_EMPTY_PATH, hidden from Swift behind _GNU_SOURCE.
    private static let atEmptyPath: Int32 = 0x1000

    /// Copies the directory at `path` (resolved inside `root`) into `destination`, whose own
    /// owner and mode then become the source directory's (Docker's copyOwnership).
    static func copy(root: String, path: String, into destination: String) throws(SystemError) {
        let sourceRoot = try ContainedRoot(root)
        guard let source = try sourceRoot.openDirectory(path) else { return }
        defer { close(source) }
        let dest = open(destination, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard dest >= 0 else { throw SystemError("open \(destination)") }
        defer { close(dest) }
        try copyEntries(from: source, to: dest, path: path, depth: 0)
        var st = stat()
        guard fstat(source, &st) == 0 else { throw SystemError("stat \(path)") }
        try setOwnerAndMode(dest, st, path)
    }

    private static func copyEntries(from src: Int32, to dst: Int32, path: String, depth: Int) throws(SystemError) {
        guard depth < maxDepth else { throw SystemError("copy \(path): directories nested deeper than \(maxDepth) levels", errno: 0) }
        for name in try entries(src, path) {
            let what = path + "/" + String(decoding: name.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
            var st = stat()
            guard fstatat(src, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { throw SystemError("stat \(what)") }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                guard mkdirat(dst, name, 0o700) == 0 else { throw SystemError("mkdir \(what)") }
                let s = try openChild(src, name, O_RDONLY | O_DIRECTORY, what)
                defer { close(s) }
                let d = try openChild(dst, name, O_RDONLY | O_DIRECTORY, what)
                defer { close(d) }
                try copyEntries(from: s, to: d, path: what, depth: depth + 1)
                try setOwnerAndMode(d, st, what)
                try copyXattrs(from: s, to: d, what)
                setTimes(d, st)
            case S_IFREG:
                // O_NONBLOCK and the check: should the entry have changed, a fifo is not waited on.
                let s = try openChild(src, name, O_RDONLY | O_NONBLOCK, what)
                defer { close(s) }
                var now = stat()
                guard fstat(s, &now) == 0, now.st_mode & S_IFMT == S_IFREG else {
                    throw SystemError("copy \(what): no longer a regular file", errno: 0)
                }
                let d = openat(dst, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
                guard d >= 0 else { throw SystemError("create \(what)") }
                defer { close(d) }
                try copyData(from: s, to: d, what)
                try setOwnerAndMode(d, st, what)
                try copyXattrs(from: s, to: d, what)
                setTimes(d, st)
            case S_IFLNK:
                let target = try readLink(src, name, what)
                guard symlinkat(cName(target), dst, name) == 0 else { throw SystemError("symlink \(what)") }
                if geteuid() == 0, fchownat(dst, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0 {
                    throw SystemError("chown \(what)")
                }
                var times = [st.st_atim, st.st_mtim]
                utimensat(dst, name, &times, AT_SYMLINK_NOFOLLOW)
            case S_IFCHR where st.st_rdev == 0:
                continue  // an overlay whiteout, never content
            default:
                // Device nodes, fifos and sockets: made, then changed through an O_PATH descriptor
                // (fchown takes it with AT_EMPTY_PATH; chmod reaches the node via /proc/self/fd).
                guard mknodat(dst, name, st.st_mode, st.st_rdev) == 0 else { throw SystemError("mknod \(what)") }
                let d = try openChild(dst, name, FileSystem.pathOnly, what)
                defer { close(d) }
                // A container sharing the volume may have put something else there meanwhile
                // (a hard link to a file): only the node just made gets the owner and mode.
                var made = stat()
                guard fstat(d, &made) == 0, made.st_mode & S_IFMT == st.st_mode & S_IFMT, made.st_rdev == st.st_rdev,
                      made.st_nlink == 1 else {
                    throw SystemError("copy \(what): the destination changed while it was copied", errno: 0)
                }
                if geteuid() == 0, fchownat(d, "", st.st_uid, st.st_gid, atEmptyPath) != 0 {
                    throw SystemError("chown \(what)")
                }
                guard chmod("/proc/self/fd/\(d)", st.st_mode & 0o7777) == 0 else { throw SystemError("chmod \(what)") }
                var times = [st.st_atim, st.st_mtim]
                utimensat(AT_FDCWD, "/proc/self/fd/\(d)", &times, 0)
            }
        }
    }

    // MARK: Pieces

    /// The NUL-terminated names in a directory, `.` and `..` left out.
    private static func entries(_ fd: Int32, _ path: String) throws(SystemError) -> [[CChar]] {
        let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else { throw SystemError("dup \(path)") }
        guard let dir = fdopendir(copy) else {
            let e = SystemError("read directory \(path)")
            close(copy)
            throw e
        }
        defer { closedir(dir) }
        rewinddir(dir)  // a duplicate shares the offset
        var out: [[CChar]] = []
        while let entry = readdir(dir) {
            let name: [CChar] = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                raw.prefix { $0 != 0 }.map { CChar(bitPattern: $0) } + [0]
            }
            if name == [46, 0] || name == [46, 46, 0] { continue }
            out.append(name)
        }
        return out
    }

    private static func openChild(_ dirFD: Int32, _ name: [CChar], _ flags: Int32, _ what: String) throws(SystemError) -> Int32 {
        let fd = openat(dirFD, name, flags | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError("open \(what)") }
        return fd
    }

    /// Copies the data regions only (SEEK_DATA/SEEK_HOLE) and sets the length, so a sparse
    /// file of a terabyte stays a few blocks instead of filling the volume's disk.
    private static func copyData(from s: Int32, to d: Int32, _ what: String) throws(SystemError) {
        var st = stat()
        guard fstat(s, &st) == 0 else { throw SystemError("stat \(what)") }
        let size = Int64(st.st_size)
        var buffer = [UInt8](repeating: 0, count: 1 << 17)
        var offset: Int64 = 0
        while offset < size {
            var data = Int64(lseek(s, off_t(offset), seekData))
            if data < 0 && errno == ENXIO { break }  // only a hole is left
            if data < 0 && errno == EINVAL { data = offset }  // no hole support: all data
            guard data >= 0 else { throw SystemError("seek \(what)") }
            let end = Int64(lseek(s, off_t(data), seekHole))
            let hole = end > data ? min(end, size) : size
            var at = data
            while at < hole {
                let n = buffer.withUnsafeMutableBytes { pread(s, $0.baseAddress, min($0.count, Int(hole - at)), off_t(at)) }
                if n < 0 && errno == EINTR { continue }
                guard n >= 0 else { throw SystemError("read \(what)") }
                if n == 0 { break }  // the file shrank
                var done = 0
                while done < n {
                    let w = buffer.withUnsafeBytes { pwrite(d, $0.baseAddress! + done, n - done, off_t(at) + off_t(done)) }
                    if w < 0 && errno == EINTR { continue }
                    guard w > 0 else { throw SystemError("write \(what)") }
                    done += w
                }
                at += Int64(n)
            }
            offset = max(hole, at)
        }
        guard ftruncate(d, off_t(size)) == 0 else { throw SystemError("truncate \(what)") }
    }

    /// SEEK_DATA and SEEK_HOLE, hidden from Swift behind _GNU_SOURCE.
    private static let seekData: Int32 = 3
    private static let seekHole: Int32 = 4

    /// Owner before mode: chown clears the set-id bits.
    private static func setOwnerAndMode(_ fd: Int32, _ st: stat, _ what: String) throws(SystemError) {
        if geteuid() == 0, fchown(fd, st.st_uid, st.st_gid) != 0 { throw SystemError("chown \(what)") }
        guard fchmod(fd, st.st_mode & 0o7777) == 0 else { throw SystemError("chmod \(what)") }
    }

    private static func setTimes(_ fd: Int32, _ st: stat) {
        var times = [st.st_atim, st.st_mtim]
        futimens(fd, &times)
    }

    /// Extended attributes of an open file or directory. A filesystem that cannot hold one
    /// (a tmpfs volume and `user.*` on older kernels) is not an error, as in Docker's copy.
    private static func copyXattrs(from s: Int32, to d: Int32, _ what: String) throws(SystemError) {
        let size = flistxattr(s, nil, 0)
        guard size > 0 else { return }
        var names = [CChar](repeating: 0, count: size)
        let got = flistxattr(s, &names, size)
        guard got > 0 else { return }
        for name in names[0..<got].split(separator: 0) {
            let cname = Array(name) + [0]
            let length = fgetxattr(s, cname, nil, 0)
            guard length >= 0 else { continue }
            var value = [UInt8](repeating: 0, count: max(length, 1))
            let n = fgetxattr(s, cname, &value, value.count)
            guard n >= 0 else { continue }
            if fsetxattr(d, cname, value, n, 0) != 0 && errno != ENOTSUP && errno != EOPNOTSUPP {
                throw SystemError("set xattr \(String(decoding: name.map { UInt8(bitPattern: $0) }, as: UTF8.self)) on \(what)")
            }
        }
    }

    private static func readLink(_ dirFD: Int32, _ name: [CChar], _ what: String) throws(SystemError) -> [UInt8] {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlinkat(dirFD, name, &buf, buf.count)
        guard n >= 0 else { throw SystemError("readlink \(what)") }
        return buf[0..<n].map { UInt8(bitPattern: $0) }
    }

    private static func cName(_ bytes: [UInt8]) -> [CChar] { bytes.map { CChar(bitPattern: $0) } + [0] }
}
