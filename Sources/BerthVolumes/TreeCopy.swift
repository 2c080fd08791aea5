import BerthOS
import Glibc

/// Copies a directory tree between directory descriptors without ever following a symlink:
/// each entry is opened with O_NOFOLLOW relative to its parent's descriptor, symlinks are
/// recreated rather than read through, and metadata goes onto what was opened. Only the start
/// path is resolved through symlinks, and then inside the source root (openat2's
/// RESOLVE_IN_ROOT), so a hostile image can neither read nor write outside its tree.
enum TreeCopy {
    static let maxSymlinks = 40
    /// O_PATH and AT_EMPTY_PATH, hidden from Swift behind _GNU_SOURCE.
    private static let oPath: Int32 = 0o10000000
    private static let atEmptyPath: Int32 = 0x1000

    /// Copies the directory at `path` (resolved inside `root`) into `destination`, whose own
    /// owner and mode then become the source directory's (Docker's copyOwnership).
    static func copy(root: String, path: String, into destination: String) throws(SystemError) {
        let rootFD = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard rootFD >= 0 else { throw SystemError("open \(root)") }
        defer { close(rootFD) }
        guard let source = try openInRoot(rootFD, path) else { return }
        defer { close(source) }
        let dest = open(destination, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard dest >= 0 else { throw SystemError("open \(destination)") }
        defer { close(dest) }
        try copyEntries(from: source, to: dest, path: path)
        var st = stat()
        guard fstat(source, &st) == 0 else { throw SystemError("stat \(path)") }
        try setOwnerAndMode(dest, st, path)
    }

    /// The directory at `path` under `rootFD`, symlinks resolved as if `rootFD` were `/`; nil
    /// when it is missing or not a directory.
    static func openInRoot(_ rootFD: Int32, _ path: String) throws(SystemError) -> Int32? {
        var stack: [Int32] = [rootFD]
        defer { for fd in stack.dropFirst() { close(fd) } }
        var pending = Array(components(Array(path.utf8)).reversed())
        var links = 0
        while let c = pending.popLast() {
            if c == [46] { continue }
            if c == [46, 46] {
                if stack.count > 1 { close(stack.removeLast()) }
                continue
            }
            let name = cName(c)
            let fd = openat(stack.last!, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if fd >= 0 {
                stack.append(fd)
                continue
            }
            let e = errno
            var st = stat()
            guard e == ELOOP || e == ENOTDIR, fstatat(stack.last!, name, &st, AT_SYMLINK_NOFOLLOW) == 0,
                  st.st_mode & S_IFMT == S_IFLNK else {
                if e == ENOENT || e == ENOTDIR || e == ELOOP { return nil }
                throw SystemError("open \(path)", errno: e)
            }
            links += 1
            guard links <= maxSymlinks else { throw SystemError("open \(path)", errno: ELOOP) }
            let target = try readLink(stack.last!, name, path)
            if target.first == UInt8(ascii: "/") {
                for fd in stack.dropFirst() { close(fd) }
                stack = [rootFD]
            }
            pending += components(target).reversed()
        }
        if stack.count == 1 {
            let fd = fcntl(rootFD, F_DUPFD_CLOEXEC, 0)
            guard fd >= 0 else { throw SystemError("dup \(path)") }
            return fd
        }
        return stack.removeLast()
    }

    private static func copyEntries(from src: Int32, to dst: Int32, path: String) throws(SystemError) {
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
                try copyEntries(from: s, to: d, path: what)
                try setOwnerAndMode(d, st, what)
                try copyXattrs(from: s, to: d, what)
                setTimes(d, st)
            case S_IFREG:
                let s = try openChild(src, name, O_RDONLY, what)
                defer { close(s) }
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
                let d = try openChild(dst, name, oPath, what)
                defer { close(d) }
                if geteuid() == 0, fchownat(d, "", st.st_uid, st.st_gid, atEmptyPath) != 0 {
                    throw SystemError("chown \(what)")
                }
                guard chmod("/proc/self/fd/\(d)", st.st_mode & 0o7777) == 0 else { throw SystemError("chmod \(what)") }
                var times = [st.st_atim, st.st_mtim]
                utimensat(AT_FDCWD, "/proc/self/fd/\(d)", &times, 0)
            }
        }
    }

    /// Bytes of the files under `dirFD`, each inode once; symlinks are not followed.
    static func size(_ dirFD: Int32, seen: inout Set<[UInt64]>) throws(SystemError) -> Int64 {
        var total: Int64 = 0
        for name in try entries(dirFD, "") {
            var st = stat()
            guard fstatat(dirFD, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            if st.st_mode & S_IFMT == S_IFDIR {
                let sub = openat(dirFD, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard sub >= 0 else { continue }
                defer { close(sub) }
                total += try size(sub, seen: &seen)
            } else if seen.insert([UInt64(st.st_dev), UInt64(st.st_ino)]).inserted {
                total += Int64(st.st_size)
            }
        }
        return total
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

    private static func copyData(from s: Int32, to d: Int32, _ what: String) throws(SystemError) {
        var buffer = [UInt8](repeating: 0, count: 1 << 17)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(s, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw SystemError("read \(what)") }
            if n == 0 { return }
            var off = 0
            while off < n {
                let w = buffer.withUnsafeBytes { write(d, $0.baseAddress! + off, n - off) }
                if w < 0 && errno == EINTR { continue }
                guard w > 0 else { throw SystemError("write \(what)") }
                off += w
            }
        }
    }

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
        let size = Xattr.list(s, nil, 0)
        guard size > 0 else { return }
        var names = [CChar](repeating: 0, count: size)
        let got = Xattr.list(s, &names, size)
        guard got > 0 else { return }
        for name in names[0..<got].split(separator: 0) {
            let cname = Array(name) + [0]
            let length = Xattr.get(s, cname, nil, 0)
            guard length >= 0 else { continue }
            var value = [UInt8](repeating: 0, count: max(length, 1))
            let n = Xattr.get(s, cname, &value, value.count)
            guard n >= 0 else { continue }
            if Xattr.set(d, cname, value, n, 0) != 0 && errno != ENOTSUP && errno != EOPNOTSUPP {
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

    private static func components(_ path: [UInt8]) -> [[UInt8]] {
        path.split(separator: UInt8(ascii: "/")).map(Array.init)
    }

    private static func cName(_ bytes: [UInt8]) -> [CChar] { bytes.map { CChar(bitPattern: $0) } + [0] }
}

/// fgetxattr and friends: Glibc's Swift module does not export <sys/xattr.h>, so the libc
/// functions are looked up by name once.
enum Xattr {
    typealias List = @convention(c) (Int32, UnsafeMutablePointer<CChar>?, Int) -> Int
    typealias Get = @convention(c) (Int32, UnsafePointer<CChar>, UnsafeMutableRawPointer?, Int) -> Int
    typealias Set = @convention(c) (Int32, UnsafePointer<CChar>, UnsafeRawPointer?, Int, Int32) -> Int32

    private static func symbol<T>(_ name: String, as type: T.Type) -> T {
        guard let handle = dlopen(nil, RTLD_NOW), let p = dlsym(handle, name) else { fatalError("libc has no \(name)") }
        return unsafeBitCast(p, to: type)
    }

    static let list = symbol("flistxattr", as: List.self)
    static let get = symbol("fgetxattr", as: Get.self)
    static let set = symbol("fsetxattr", as: Set.self)
}
