import Glibc

/// Extended-attribute calls. Glibc's Swift module does not export <sys/xattr.h>, and a Swift
/// target cannot hold a C shim, so the libc functions are looked up once by name.
enum Xattr {
    private typealias FSet = @convention(c) (Int32, UnsafePointer<CChar>, UnsafeRawPointer?, Int, Int32) -> Int32
    private typealias LSet = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafeRawPointer?, Int, Int32) -> Int32
    private typealias LGet = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafeMutableRawPointer?, Int) -> Int

    private static func symbol<T>(_ name: String, as type: T.Type) -> T {
        guard let handle = dlopen(nil, RTLD_NOW), let p = dlsym(handle, name) else {
            fatalError("libc has no \(name)")
        }
        return unsafeBitCast(p, to: type)
    }

    private static let fsetFunction = symbol("fsetxattr", as: FSet.self)
    private static let lsetFunction = symbol("lsetxattr", as: LSet.self)
    private static let lgetFunction = symbol("lgetxattr", as: LGet.self)

    static func set(fd: Int32, _ name: String, _ value: [UInt8]) -> Int32 {
        value.withUnsafeBytes { fsetFunction(fd, name, $0.baseAddress, $0.count, 0) }
    }

    /// Does not follow a final symlink.
    static func set(path: String, _ name: String, _ value: [UInt8]) -> Int32 {
        value.withUnsafeBytes { lsetFunction(path, name, $0.baseAddress, $0.count, 0) }
    }

    /// The value, or nil (errno set) when absent or unreadable. Does not follow a final symlink.
    static func get(path: String, _ name: String) -> [UInt8]? {
        var buf = [UInt8](repeating: 0, count: 65536)
        let n = buf.withUnsafeMutableBytes { lgetFunction(path, name, $0.baseAddress, $0.count) }
        return n < 0 ? nil : Array(buf[0..<n])
    }
}
