#if canImport(Glibc)
import Glibc
#endif

/// Plain open/read/write/close on cgroup files. Each value goes out in one write(2), as the
/// kernel parses a cgroup file per write; no Foundation on this path (the runtime creates a
/// container in a few milliseconds).
enum CgroupFiles {
    static func write(_ value: String, to path: String) throws(CgroupError) {
        let fd = retryingEINTR { open(path, O_WRONLY | O_TRUNC | O_CLOEXEC) }
        guard fd >= 0 else {
            throw .system("writing \"\(value)\" to \(path)", errno: errno)
        }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        let written = bytes.withUnsafeBytes { buffer in
            retryingEINTR { Glibc.write(fd, buffer.baseAddress, buffer.count) }
        }
        if written < 0 {
            throw .system("writing \"\(value)\" to \(path)", errno: errno)
        }
        if written != bytes.count {
            throw CgroupError(.system, "writing \"\(value)\" to \(path): short write (\(written) of \(bytes.count) bytes)")
        }
    }

    /// The whole file as text.
    static func read(_ path: String) throws(CgroupError) -> String {
        let fd = retryingEINTR { open(path, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { throw .system("reading \(path)", errno: errno) }
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { buffer in
                retryingEINTR { Glibc.read(fd, buffer.baseAddress, buffer.count) }
            }
            if n < 0 { throw .system("reading \(path)", errno: errno) }
            if n == 0 { break }
            result.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// The file's text without surrounding whitespace, or nil when it does not exist.
    static func readIfPresent(_ path: String) throws(CgroupError) -> String? {
        do {
            return try read(path).trimmed
        } catch where error.errno == ENOENT {
            return nil
        }
    }

    static func readTrimmed(_ path: String) throws(CgroupError) -> String {
        try read(path).trimmed
    }

    static func readUInt64(_ path: String) throws(CgroupError) -> UInt64 {
        let text = try readTrimmed(path)
        guard let value = UInt64(text) else {
            throw CgroupError(.system, "parsing \(path): \"\(text)\" is not an unsigned integer")
        }
        return value
    }

    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// mkdir(2); an existing directory is fine.
    static func makeDirectory(_ path: String) throws(CgroupError) {
        if mkdir(path, 0o755) != 0 {
            let number = errno
            if number == EEXIST { return }
            throw .system("creating \(path)", errno: number)
        }
    }

    /// Names of the subdirectories of `path` (child cgroups); empty when `path` is missing.
    static func subdirectories(of path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let type = entry.pointee.d_type
            let name = withUnsafePointer(to: &entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name == "." || name == ".." { continue }
            if type == UInt8(DT_DIR) || (type == UInt8(DT_UNKNOWN) && isDirectory(path + "/" + name)) {
                names.append(name)
            }
        }
        return names
    }

    /// Regular files directly in `path`.
    static func files(in path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name == "." || name == ".." { continue }
            if entry.pointee.d_type != UInt8(DT_DIR) && !isDirectory(path + "/" + name) { names.append(name) }
        }
        return names
    }

    /// Removes `path` and every cgroup below it, deepest first. A missing directory is fine;
    /// EBUSY (processes still exiting) is retried for about a third of a second.
    /// `plainDirectories` is set for trees under an injected filesystem root (tests): there the
    /// "control files" are real files, which the kernel would have removed with the directory.
    static func removeTree(_ path: String, plainDirectories: Bool) throws(CgroupError) {
        for child in subdirectories(of: path) {
            try removeTree(path + "/" + child, plainDirectories: plainDirectories)
        }
        var delay: useconds_t = 10_000
        for attempt in 0..<6 {
            if rmdir(path) == 0 { return }
            let number = errno
            switch number {
            case ENOENT:
                return
            case EBUSY where attempt < 5:
                usleep(delay)
                delay *= 2
            case ENOTEMPTY where plainDirectories:
                for file in files(in: path) { unlink(path + "/" + file) }
                if rmdir(path) == 0 { return }
                throw .system("removing \(path)", errno: errno)
            default:
                throw .system("removing \(path)", errno: number)
            }
        }
        throw .system("removing \(path)", errno: EBUSY)
    }

    /// Rejects a value that would leave the cgroup directory when used in a file name.
    static func validateName(_ name: String, what: String) throws(CgroupError) {
        if name.isEmpty || name.contains("/") || name == "." || name == ".." {
            throw CgroupError(.invalidArgument, "\(what) \"\(name)\" cannot name a cgroup file")
        }
    }

    /// Parses a file of `key value` lines (memory.stat, cpu.stat, memory.events, ...).
    static func keyValues(_ text: String) -> [String: UInt64] {
        var result: [String: UInt64] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count == 2, let value = UInt64(fields[1]) {
                result[String(fields[0])] = value
            }
        }
        return result
    }

    @inline(__always)
    private static func retryingEINTR<T: BinaryInteger>(_ call: () -> T) -> T {
        while true {
            let result = call()
            if result < 0 && errno == EINTR { continue }
            return result
        }
    }
}

extension StringProtocol {
    var trimmed: String {
        var view = Substring(self)
        while let first = view.first, first.isWhitespace { view.removeFirst() }
        while let last = view.last, last.isWhitespace { view.removeLast() }
        return String(view)
    }
}
