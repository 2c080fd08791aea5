import BerthOS
import Glibc

/// A source of bytes read in chunks: a file descriptor, an array, or whatever the caller
/// adapts (an HTTP body). Returning 0 means end of stream.
public protocol ByteReader {
    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

/// Reads a file descriptor the caller owns (and closes).
public struct FileDescriptorReader: ByteReader {
    public let fd: Int32
    public init(fd: Int32) { self.fd = fd }

    public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw ImageError.system("read", errno: errno)
        }
    }
}

public struct BytesReader: ByteReader {
    private let bytes: [UInt8]
    private var offset = 0
    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buffer.count, bytes.count - offset)
        if n > 0 {
            bytes.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + offset, byteCount: n) }
            offset += n
        }
        return n
    }
}

/// Thin wrappers over the file-descriptor calls the store and unpacker make many times.
enum FD {
    static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, what: @autoclosure () -> String) throws {
        var off = 0
        while off < buffer.count {
            let n = write(fd, buffer.baseAddress! + off, buffer.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                throw ImageError.system("write \(what())", errno: errno)
            }
            off += n
        }
    }

    static func pwriteAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, at offset: Int64,
                          what: @autoclosure () -> String) throws {
        var off = 0
        while off < buffer.count {
            let n = pwrite(fd, buffer.baseAddress! + off, buffer.count - off, off_t(offset) + off_t(off))
            if n < 0 {
                if errno == EINTR { continue }
                throw ImageError.system("write \(what())", errno: errno)
            }
            off += n
        }
    }

    static func open(_ path: String, _ flags: Int32, _ mode: mode_t = 0) throws -> Int32 {
        while true {
            let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
            if fd >= 0 { return fd }
            if errno == EINTR { continue }
            let e = errno
            if e == ENOENT { throw ImageError.notFound(SystemError("open \(path)", errno: e).message) }
            throw ImageError.system("open \(path)", errno: e)
        }
    }

    static func readAll(_ fd: Int32, what: @autoclosure () -> String) throws -> [UInt8] {
        var out = [UInt8]()
        var reader = FileDescriptorReader(fd: fd)
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n: Int
            do { n = try chunk.withUnsafeMutableBytes { b in try reader.read(into: b) } }
            catch let error as ImageError { throw ImageError(error.code, "\(what()): \(error.message)") }
            if n == 0 { return out }
            out.append(contentsOf: chunk[0..<n])
        }
    }

    /// A random name component for temporary files and directories.
    static func randomSuffix() -> String {
        var g = SystemRandomNumberGenerator()
        let digits = Array("0123456789abcdef")
        return String((0..<16).map { _ in digits[Int(g.next() % 16)] })
    }
}
