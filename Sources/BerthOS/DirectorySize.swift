import Glibc

/// Bytes of the files under a directory, each inode once, symlinks not followed: what dockerd's
/// `directory.Size` counts, for `system df`, `ps -s` and volume sizes. The tree may be a
/// container's (its writable layer, a volume), so the walk is bounded: directories nested
/// deeper than `maxDepth` are not counted rather than costing berthd a descriptor and a stack
/// frame per level.
public enum DirectorySize {
    public static let maxDepth = 256

    public static func of(_ path: String) -> Int64 {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return 0 }
        var seen = Set<[UInt64]>()
        return walk(fd, depth: 0, seen: &seen)
    }

    /// Takes ownership of `fd`.
    private static func walk(_ fd: Int32, depth: Int, seen: inout Set<[UInt64]>) -> Int64 {
        guard depth < maxDepth, let dir = fdopendir(fd) else {
            close(fd)
            return 0
        }
        defer { closedir(dir) }
        let dfd = dirfd(dir)
        var total: Int64 = 0
        while let entry = readdir(dir) {
            guard let name = FileSystem.entryName(entry) else { continue }
            var st = stat()
            guard fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            if st.st_mode & S_IFMT == S_IFDIR {
                let child = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if child >= 0 { total += walk(child, depth: depth + 1, seen: &seen) }
            } else if seen.insert([UInt64(st.st_dev), UInt64(st.st_ino)]).inserted {
                total += Int64(st.st_size)
            }
        }
        return total
    }
}
