import Glibc

/// Kernel parameters under /proc/sys. Keys under net.* belong to the network namespace of the
/// calling thread, so call it inside `NetworkNamespace.run` to set a container's values.
public enum Sysctl {
    /// Writes `value` to /proc/sys/<key with dots as slashes> ("net.ipv4.ip_forward").
    /// A key containing "/" is taken as a path below /proc/sys as is (for names with dots).
    public static func write(_ key: String, _ value: String) throws(NetlinkError) {
        let path = "/proc/sys/" + (key.contains("/") ? key : String(key.map { $0 == "." ? "/" : $0 }))
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        if fd < 0 { throw NetlinkError(result: errno, "cannot open sysctl \(key) (\(path))") }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        if written != bytes.count {
            throw NetlinkError(result: written < 0 ? errno : EIO, "cannot write \(value) to sysctl \(key)")
        }
    }

    /// Reads /proc/sys/<key>, without the trailing newline.
    public static func read(_ key: String) throws(NetlinkError) -> String {
        let path = "/proc/sys/" + (key.contains("/") ? key : String(key.map { $0 == "." ? "/" : $0 }))
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw NetlinkError(result: errno, "cannot open sysctl \(key) (\(path))") }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if count < 0 { throw NetlinkError(result: errno, "cannot read sysctl \(key)") }
        var text = String(decoding: buffer[..<count], as: UTF8.self)
        while text.last == "\n" { text.removeLast() }
        return text
    }
}
