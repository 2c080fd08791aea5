import Glibc

extension FileSystem {
    /// Removes a tree; a missing path is not an error. The tree may be a container's (its
    /// writable layer), so the walk holds two descriptors whatever the depth (it climbs back up
    /// through ".." and a stack of names), never follows a symlink, and never descends into
    /// another filesystem mounted inside: that throws, and what lies under it stays.
    public static func removeTree(_ path: String) throws(SystemError) {
        try removeTree(in: AT_FDCWD, Array(path.utf8CString), describedAs: path)
    }

    /// Removes the entry `name` (NUL-terminated) of the directory `dirFD` and everything below
    /// it, as `removeTree(_:)` does.
    public static func removeTree(in dirFD: Int32, _ name: [CChar], describedAs path: String? = nil) throws(SystemError) {
        let path = path ?? String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var st = stat()
        guard fstatat(dirFD, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else {
            if Glibc.errno == ENOENT { return }
            throw SystemError("remove \(path)")
        }
        guard st.st_mode & S_IFMT == S_IFDIR else {
            guard unlinkat(dirFD, name, 0) == 0 || Glibc.errno == ENOENT else { throw SystemError("remove \(path)") }
            return
        }
        var current = openat(dirFD, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard current >= 0 else { throw SystemError("open \(path)") }
        let device = st.st_dev
        var names: [[CChar]] = []  // the way down from `path` to `current`
        defer { close(current) }
        while true {
            if let child = try emptyAllButOneDirectory(current, device: device, under: path) {
                let next = openat(current, child, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard next >= 0 else { throw SystemError("open a directory under \(path)") }
                close(current)
                current = next
                names.append(child)
                continue
            }
            guard let child = names.popLast() else { break }
            let parent = openat(current, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard parent >= 0 else { throw SystemError("open a directory under \(path)") }
            close(current)
            current = parent
            guard unlinkat(current, child, AT_REMOVEDIR) == 0 || Glibc.errno == ENOENT else {
                throw SystemError("remove a directory under \(path)")
            }
        }
        guard unlinkat(dirFD, name, AT_REMOVEDIR) == 0 || Glibc.errno == ENOENT else { throw SystemError("remove \(path)") }
    }

    /// The NUL-terminated name of a `readdir` entry; nil for "." and "..".
    static func entryName(_ entry: UnsafeMutablePointer<dirent>) -> [CChar]? {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            Array(raw.prefix { $0 != 0 }.map { CChar(bitPattern: $0) }) + [0]
        }
        return name == [46, 0] || name == [46, 46, 0] ? nil : name
    }

    /// Removes every entry of the directory `fd` but its subdirectories, and returns the name of
    /// one of those, or nil when none is left.
    private static func emptyAllButOneDirectory(_ fd: Int32, device: dev_t, under path: String) throws(SystemError) -> [CChar]? {
        let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0, let dir = fdopendir(copy) else {
            if copy >= 0 { close(copy) }
            throw SystemError("read a directory under \(path)")
        }
        defer { closedir(dir) }
        rewinddir(dir)
        while let entry = readdir(dir) {
            guard let name = FileSystem.entryName(entry) else { continue }
            var st = stat()
            guard fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            if st.st_mode & S_IFMT == S_IFDIR {
                guard st.st_dev == device else {
                    throw SystemError("remove \(path): a filesystem is mounted inside it", errno: EBUSY)
                }
                return name
            }
            guard unlinkat(fd, name, 0) == 0 || Glibc.errno == ENOENT else { throw SystemError("remove a file under \(path)") }
        }
        return nil
    }
}
