import CBerthSys
import FoundationEssentials
import Glibc

/// Errors from the OS layer carry the failing call, its argument and errno's text.
public struct SystemError: Error, CustomStringConvertible {
    public let message: String
    public let errno: Int32
    public init(_ what: String, errno: Int32 = Glibc.errno) {
        self.errno = errno
        self.message = errno == 0 ? what : "\(what): \(String(cString: strerror(errno)))"
    }
    public var description: String { message }
}

public enum FileSystem {
    /// O_PATH: a descriptor that only names a file (Swift's Glibc module does not show it).
    public static let pathOnly: Int32 = BERTH_O_PATH

    public static func readBytes(_ path: String) throws(SystemError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError("open \(path)") }
        defer { close(fd) }
        return try readToEnd(fd, what: path)
    }

    /// Everything `fd` yields until end of file (a file, pipe or fifo); `what` names it in errors.
    public static func readToEnd(_ fd: Int32, what: String) throws(SystemError) -> [UInt8] {
        var data = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if Glibc.errno == EINTR { continue }
                throw SystemError("read \(what)")
            }
            if n == 0 { break }
            data.append(contentsOf: buf[0..<n])
        }
        return data
    }

    public static func readData(_ path: String) throws(SystemError) -> Data {
        Data(try readBytes(path))
    }

    public static func readString(_ path: String) throws(SystemError) -> String {
        String(decoding: try readBytes(path), as: UTF8.self)
    }

    /// Writes via a temporary file and rename, so a reader (or a crashed writer) sees the old
    /// or the new content and never a part of it. `durable` adds an fsync before the rename
    /// for what must survive a power loss; a runtime's state describes live processes, which
    /// do not survive one either.
    public static func writeAtomically(_ path: String, _ bytes: some Collection<UInt8>, mode: mode_t = 0o644,
                                       durable: Bool = false) throws(SystemError) {
        let tmp = "\(path).tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw SystemError("create \(tmp)") }
        do { try writeAll(fd, Array(bytes), what: tmp) } catch {
            close(fd); unlink(tmp)
            throw error
        }
        if durable && fsync(fd) != 0 {
            let e = SystemError("fsync \(tmp)")
            close(fd); unlink(tmp)
            throw e
        }
        close(fd)
        if rename(tmp, path) != 0 {
            let e = SystemError("rename \(tmp) to \(path)")
            unlink(tmp)
            throw e
        }
        // The rename itself is only on disk once the directory is.
        if durable { try syncDirectory(String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])) }
    }

    /// Replaces a file's content keeping its inode, for files bind-mounted elsewhere (a new
    /// inode from a rename would not show through the mount). Not atomic: for small files
    /// whose readers tolerate a rewrite, such as a running container's resolv.conf.
    public static func overwrite(_ path: String, _ bytes: some Collection<UInt8>) throws(SystemError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SystemError("open \(path)") }
        defer { close(fd) }
        try writeAll(fd, Array(bytes), what: path)
    }

    static func writeAll(_ fd: Int32, _ array: [UInt8], what: String) throws(SystemError) {
        var off = 0
        while off < array.count {
            let n = array.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 {
                if Glibc.errno == EINTR { continue }
                throw SystemError("write \(what)")
            }
            off += n
        }
    }

    /// fsync of a directory: makes the entries created, renamed or removed in it durable.
    public static func syncDirectory(_ path: String) throws(SystemError) {
        let fd = open(path.isEmpty ? "." : path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError("open \(path)") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw SystemError("fsync \(path)") }
    }

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    public static func makeDirectories(_ path: String, mode: mode_t = 0o711) throws(SystemError) {
        var current = ""
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            current += "/" + part
            if mkdir(current, mode) != 0 && Glibc.errno != EEXIST { throw SystemError("mkdir \(current)") }
        }
    }

    /// Absolute form of a path relative to the current directory, with `.`/`..` folded.
    public static func absolute(_ path: String) -> String {
        let base: String
        if path.hasPrefix("/") {
            base = path
        } else {
            var buf = [CChar](repeating: 0, count: Int(PATH_MAX))
            let cwd = getcwd(&buf, buf.count).map { String(cString: $0) } ?? "/"
            base = cwd + "/" + path
        }
        return clean(base)
    }

    /// An absolute path with `.` and `..` folded lexically (`..` stops at `/`).
    public static func clean(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/") {
            if part == "." { continue }
            if part == ".." { _ = parts.popLast(); continue }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }
}
