import CBerthSys
import Glibc

/// Bind mounts made through descriptors (see berth_mount.h): what was resolved is what gets
/// mounted, so a tree a container writes to cannot swap a symlink in between.
public enum BindMount {
    /// Bind-mounts the directory `path` inside `root` onto `target`, resolving `path` with the
    /// kernel confined to `root` and refusing every symlink on the way (a hostile tree cannot
    /// point the mount outside `root`).
    public static func bindDirectory(beneath root: String, _ path: String, onto target: String) throws(SystemError) {
        let rootFD = open(root, BERTH_O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard rootFD >= 0 else { throw SystemError("open \(root)") }
        defer { close(rootFD) }
        let relative = path.drop { $0 == "/" }
        let fd = berth_openat2(rootFD, relative.isEmpty ? "." : String(relative), BERTH_O_PATH | O_DIRECTORY | O_CLOEXEC, 0,
                               UInt64(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS))
        guard fd >= 0 else {
            throw SystemError("open \(path) inside \(root)" + (Glibc.errno == ELOOP ? " (a symlink is not allowed there)" : ""))
        }
        defer { close(fd) }
        guard berth_bind_mount(fd, nil, target, 0) == 0 else { throw SystemError("bind mount \(path) inside \(root) on \(target)") }
    }

    /// A read-only, nosuid, nodev bind of `source` onto `target`.
    public static func bindReadOnly(_ source: String, onto target: String) throws(SystemError) {
        guard berth_bind_mount(AT_FDCWD, source, target, 1) == 0 else { throw SystemError("read-only bind mount of \(source) on \(target)") }
    }

    /// Unmounts everything stacked on `target` (lazily where busy); a path that is not a mount
    /// point is left as it is.
    public static func unmountAll(_ target: String) {
        var tries = 0
        while tries < 64, umount2(target, Int32(UMOUNT_NOFOLLOW)) == 0 || (Glibc.errno == EBUSY && umount2(target, Int32(MNT_DETACH | UMOUNT_NOFOLLOW)) == 0) {
            tries += 1
        }
    }
}
