import BerthOCI
import CArchive
import Glibc

/// One tar header, as the reader reports it and the writer takes it.
public struct TarHeader: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case regular, directory, symlink, hardlink, characterDevice, blockDevice, fifo, socket
    }

    public var path: String
    public var kind: Kind
    /// Permission bits including setuid, setgid and sticky (07777).
    public var mode: UInt32
    public var uid: Int64 = 0
    public var gid: Int64 = 0
    public var size: Int64 = 0
    public var mtime: Int64 = 0
    public var mtimeNanoseconds: Int = 0
    /// Symlink target or hardlink target.
    public var linkTarget: String?
    public var deviceMajor: UInt32 = 0
    public var deviceMinor: UInt32 = 0
    /// Extended attributes in the order the archive lists them (pax SCHILY.xattr.*).
    public var xattrs: [Xattr] = []

    public struct Xattr: Sendable, Equatable {
        public var name: String
        public var value: [UInt8]
        public init(name: String, value: [UInt8]) { self.name = name; self.value = value }
    }

    /// The path and link target exactly as stored (they need not be UTF-8).
    var rawPath: [UInt8] = []
    var rawLinkTarget: [UInt8]?

    public init(path: String, kind: Kind, mode: UInt32, uid: Int64 = 0, gid: Int64 = 0, size: Int64 = 0,
                mtime: Int64 = 0, linkTarget: String? = nil, deviceMajor: UInt32 = 0, deviceMinor: UInt32 = 0,
                xattrs: [Xattr] = []) {
        self.path = path; self.kind = kind; self.mode = mode; self.uid = uid; self.gid = gid; self.size = size
        self.mtime = mtime; self.linkTarget = linkTarget; self.deviceMajor = deviceMajor
        self.deviceMinor = deviceMinor; self.xattrs = xattrs
        self.rawPath = Array(path.utf8)
        self.rawLinkTarget = linkTarget.map { Array($0.utf8) }
    }

    public static func == (a: TarHeader, b: TarHeader) -> Bool {
        a.rawPath == b.rawPath && a.kind == b.kind && a.mode == b.mode && a.uid == b.uid && a.gid == b.gid
            && a.size == b.size && a.mtime == b.mtime && a.rawLinkTarget == b.rawLinkTarget
            && a.deviceMajor == b.deviceMajor && a.deviceMinor == b.deviceMinor && a.xattrs == b.xattrs
    }
}

/// Reads a tar stream, plain or compressed (gzip, zstd, bzip2, xz), and hashes the
/// *uncompressed* stream as it goes: at the end `finish()` gives the layer's DiffID
/// (image-spec config.md) without a second pass.
///
/// Two libarchive readers are chained: one in "raw" format only decompresses, the tar
/// reader pulls its input from the first through a callback that hashes every byte.
final class TarReader {
    private let raw: OpaquePointer
    private let tar: OpaquePointer
    private var hasher = SHA256()
    private var rawAtEnd = false
    private var rawError: String?
    private var tarAtEnd = false
    private(set) var compression = LayerCompression.none
    private let what: String
    /// Receives every decompressed byte as it is hashed (`docker import` stores the plain tar).
    private let tee: IngestWriter?
    /// Most decompressed bytes to accept, with the error to give beyond them: a small
    /// compressed stream can expand without bound (a "zip bomb") into the tee's disk.
    private let limit: (bytes: Int64, error: ImageError)?
    private var limitExceeded = false

    /// Reads from `fd`, which the caller keeps open until the reader is gone.
    init(fd: Int32, what: String, tee: IngestWriter? = nil, limit: (bytes: Int64, error: ImageError)? = nil) throws {
        self.what = what
        self.tee = tee
        self.limit = limit
        guard let raw = archive_read_new() else { throw ImageError.system("archive_read_new", errno: ENOMEM) }
        self.raw = raw
        guard let tar = archive_read_new() else {
            archive_read_free(raw)
            throw ImageError.system("archive_read_new", errno: ENOMEM)
        }
        self.tar = tar
        // Only in-library decoders: libarchive's "all" would also run external programs (lrzip, lzop).
        archive_read_support_filter_gzip(raw)
        archive_read_support_filter_zstd(raw)
        archive_read_support_filter_bzip2(raw)
        archive_read_support_filter_xz(raw)
        archive_read_support_format_raw(raw)
        archive_read_support_format_tar(tar)
        archive_read_support_format_gnutar(tar)
        guard archive_read_open_fd(raw, fd, 1 << 20) == ARCHIVE_OK else {
            throw ImageError.invalid("\(what): \(Self.message(raw))")
        }
        var entry: OpaquePointer?
        switch archive_read_next_header(raw, &entry) {
        case ARCHIVE_OK, ARCHIVE_WARN: break
        case ARCHIVE_EOF: rawAtEnd = true
        default: throw ImageError.invalid("\(what): \(Self.message(raw))")
        }
        switch archive_filter_code(raw, 0) {
        case ARCHIVE_FILTER_GZIP: compression = .gzip
        case ARCHIVE_FILTER_ZSTD: compression = .zstd
        default: compression = .none
        }
        let me = Unmanaged.passUnretained(self).toOpaque()
        let status = archive_read_open(tar, me, nil, { _, client, buffer in
            Unmanaged<TarReader>.fromOpaque(client!).takeUnretainedValue().pull(buffer!)
        }, nil)
        guard status == ARCHIVE_OK else { throw ImageError.invalid("\(what): \(failure(tar))") }
    }

    deinit {
        archive_read_free(tar)
        archive_read_free(raw)
    }

    /// Feeds the tar reader: the next decompressed block, hashed on the way.
    private func pull(_ buffer: UnsafeMutablePointer<UnsafeRawPointer?>) -> Int {
        while !rawAtEnd {
            var block: UnsafeRawPointer?
            var size = 0
            var offset: la_int64_t = 0
            let r = archive_read_data_block(raw, &block, &size, &offset)
            if r == ARCHIVE_EOF { rawAtEnd = true; break }
            if r < ARCHIVE_WARN {
                rawError = Self.message(raw)
                return -1
            }
            if size == 0 { continue }
            if let limit, Int64(hasher.count) + Int64(size) > limit.bytes {
                limitExceeded = true
                rawError = limit.error.message
                return -1
            }
            hasher.update(UnsafeRawBufferPointer(start: block, count: size))
            if let tee {
                do { try tee.write(UnsafeRawBufferPointer(start: block, count: size)) } catch {
                    rawError = "\(error)"
                    return -1
                }
            }
            buffer.pointee = block
            return size
        }
        buffer.pointee = nil
        return 0
    }

    private static func message(_ a: OpaquePointer) -> String {
        archive_error_string(a).map { String(cString: $0) } ?? "unreadable archive"
    }

    private func failure(_ a: OpaquePointer) -> String { rawError ?? Self.message(a) }

    /// The error for a failed libarchive call: the expansion limit's own, or an invalid archive.
    private func readError(_ a: OpaquePointer) -> ImageError {
        if limitExceeded, let limit { return limit.error }
        return ImageError.invalid("\(what): \(failure(a))")
    }

    /// The next header, or nil at the end of the archive. The previous entry's unread data is skipped.
    func next() throws -> TarHeader? {
        if tarAtEnd { return nil }
        var entry: OpaquePointer?
        let r = archive_read_next_header(tar, &entry)
        if r == ARCHIVE_EOF { tarAtEnd = true; return nil }
        guard r == ARCHIVE_OK || r == ARCHIVE_WARN, let e = entry else { throw readError(tar) }
        return Self.header(e)
    }

    private static func bytes(_ p: UnsafePointer<CChar>?) -> [UInt8]? {
        guard let p else { return nil }
        return Array(UnsafeRawBufferPointer(start: p, count: strlen(p)))
    }

    private static func header(_ e: OpaquePointer) -> TarHeader {
        let rawPath = bytes(archive_entry_pathname(e)) ?? bytes(archive_entry_pathname_utf8(e)) ?? []
        let hardlink = bytes(archive_entry_hardlink(e))
        let symlink = bytes(archive_entry_symlink(e))
        let kind: TarHeader.Kind
        if hardlink != nil {
            kind = .hardlink
        } else {
            switch archive_entry_filetype(e) & 0o170000 {
            case 0o040000: kind = .directory
            case 0o120000: kind = .symlink
            case 0o020000: kind = .characterDevice
            case 0o060000: kind = .blockDevice
            case 0o010000: kind = .fifo
            case 0o140000: kind = .socket
            default: kind = .regular
            }
        }
        var h = TarHeader(path: String(decoding: rawPath, as: UTF8.self), kind: kind,
                          mode: UInt32(archive_entry_perm(e) & 0o7777))
        h.rawPath = rawPath
        h.rawLinkTarget = hardlink ?? (kind == .symlink ? symlink : nil)
        h.linkTarget = h.rawLinkTarget.map { String(decoding: $0, as: UTF8.self) }
        h.uid = archive_entry_uid(e)
        h.gid = archive_entry_gid(e)
        h.size = archive_entry_size_is_set(e) != 0 ? archive_entry_size(e) : 0
        h.mtime = Int64(archive_entry_mtime(e))
        h.mtimeNanoseconds = Int(archive_entry_mtime_nsec(e))
        h.deviceMajor = UInt32(truncatingIfNeeded: archive_entry_rdevmajor(e))
        h.deviceMinor = UInt32(truncatingIfNeeded: archive_entry_rdevminor(e))
        if archive_entry_xattr_reset(e) > 0 {
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            while archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK {
                guard let name else { continue }
                let v = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
                h.xattrs.append(.init(name: String(cString: name), value: v))
            }
        }
        return h
    }

    /// The next block of the current entry's data, with its offset (sparse files have holes);
    /// nil at the entry's end. The buffer is valid until the next call.
    func readBlock() throws -> (bytes: UnsafeRawBufferPointer, offset: Int64)? {
        var block: UnsafeRawPointer?
        var size = 0
        var offset: la_int64_t = 0
        let r = archive_read_data_block(tar, &block, &size, &offset)
        if r == ARCHIVE_EOF { return nil }
        guard r == ARCHIVE_OK || r == ARCHIVE_WARN else { throw readError(tar) }
        return (UnsafeRawBufferPointer(start: block, count: size), Int64(offset))
    }

    /// Reads the rest of the stream (the tar reader stops at the end-of-archive marker) and
    /// returns the digest and length of everything decompressed.
    func finish() throws -> (digest: Digest, size: Int64) {
        while try next() != nil {}
        var sink: UnsafeRawPointer?
        while !rawAtEnd {
            if pull(&sink) < 0 {
                if limitExceeded, let limit { throw limit.error }
                throw ImageError.invalid("\(what): \(rawError ?? "read error")")
            }
        }
        let size = Int64(hasher.count)
        return (hasher.finalize(), size)
    }

    /// The DiffID of a layer blob: the digest of its uncompressed tar stream.
    static func diffID(fd: Int32, what: String) throws -> (digest: Digest, size: Int64) {
        try TarReader(fd: fd, what: what).finish()
    }
}

/// Writes a tar stream (pax where needed, plain ustar otherwise) to a file descriptor.
/// `docker save` output, import tests and crafted layers in the tests use it.
public final class TarWriter {
    private let a: OpaquePointer
    private var closed = false

    public enum Compression: Sendable { case none, gzip, zstd }

    /// Writes to `fd`, which the caller keeps open until `finish()` and then closes.
    public init(fd: Int32, compression: Compression = .none) throws {
        guard let a = archive_write_new() else { throw ImageError.system("archive_write_new", errno: ENOMEM) }
        self.a = a
        archive_write_set_format_pax_restricted(a)
        switch compression {
        case .none: break
        case .gzip: archive_write_add_filter_gzip(a)
        case .zstd: archive_write_add_filter_zstd(a)
        }
        // The last block is not padded beyond the tar end marker, like Go's archive/tar.
        archive_write_set_bytes_in_last_block(a, 1)
        guard archive_write_open_fd(a, fd) == ARCHIVE_OK else { throw ImageError.system(error, errno: 0) }
    }

    deinit {
        if !closed { archive_write_close(a) }
        archive_write_free(a)
    }

    private var error: String { archive_error_string(a).map { String(cString: $0) } ?? "tar write failed" }

    /// Writes a header; a regular file's `size` bytes must follow through `write`.
    public func add(_ h: TarHeader) throws {
        guard let e = archive_entry_new() else { throw ImageError.system("archive_entry_new", errno: ENOMEM) }
        defer { archive_entry_free(e) }
        (h.rawPath + [0]).withUnsafeBufferPointer { archive_entry_copy_pathname(e, UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self)) }
        let type: UInt32
        switch h.kind {
        case .regular, .hardlink: type = 0o100000
        case .directory: type = 0o040000
        case .symlink: type = 0o120000
        case .characterDevice: type = 0o020000
        case .blockDevice: type = 0o060000
        case .fifo: type = 0o010000
        case .socket: type = 0o140000
        }
        archive_entry_set_filetype(e, type)
        archive_entry_set_perm(e, mode_t(h.mode & 0o7777))
        archive_entry_set_uid(e, h.uid)
        archive_entry_set_gid(e, h.gid)
        archive_entry_set_mtime(e, time_t(h.mtime), h.mtimeNanoseconds)
        if let target = h.rawLinkTarget {
            (target + [0]).withUnsafeBufferPointer {
                let p = UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self)
                if h.kind == .hardlink { archive_entry_copy_hardlink(e, p) } else { archive_entry_copy_symlink(e, p) }
            }
        }
        archive_entry_set_size(e, h.kind == .regular ? h.size : 0)
        if h.kind == .characterDevice || h.kind == .blockDevice {
            archive_entry_set_rdevmajor(e, dev_t(h.deviceMajor))
            archive_entry_set_rdevminor(e, dev_t(h.deviceMinor))
        }
        for x in h.xattrs {
            x.value.withUnsafeBytes { archive_entry_xattr_add_entry(e, x.name, $0.baseAddress, $0.count) }
        }
        guard archive_write_header(a, e) >= ARCHIVE_WARN else { throw ImageError.system("tar header \(h.path): \(error)", errno: 0) }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0 else { return }
        let n = archive_write_data(a, bytes.baseAddress, bytes.count)
        guard n == bytes.count else { throw ImageError.system("tar write: \(error)", errno: 0) }
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// A regular file with the given content.
    public func addFile(_ path: String, _ bytes: [UInt8], mode: UInt32 = 0o644, uid: Int64 = 0, gid: Int64 = 0,
                        mtime: Int64 = 0, xattrs: [TarHeader.Xattr] = []) throws {
        try add(TarHeader(path: path, kind: .regular, mode: mode, uid: uid, gid: gid, size: Int64(bytes.count),
                          mtime: mtime, xattrs: xattrs))
        try write(bytes)
    }

    /// A regular file whose `size` bytes are copied from `fd`.
    public func addFile(_ path: String, size: Int64, from fd: Int32, mode: UInt32 = 0o644, mtime: Int64 = 0) throws {
        try add(TarHeader(path: path, kind: .regular, mode: mode, size: size, mtime: mtime))
        var left = size
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var reader = FileDescriptorReader(fd: fd)
        while left > 0 {
            let n = try chunk.withUnsafeMutableBytes { try reader.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<Int(min(Int64($0.count), left))])) }
            if n == 0 { throw ImageError.state("\(path): file ended \(left) bytes early") }
            try chunk.withUnsafeBytes { try write(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            left -= Int64(n)
        }
    }

    public func addDirectory(_ path: String, mode: UInt32 = 0o755, uid: Int64 = 0, gid: Int64 = 0, mtime: Int64 = 0) throws {
        try add(TarHeader(path: path, kind: .directory, mode: mode, uid: uid, gid: gid, mtime: mtime))
    }

    public func addSymlink(_ path: String, target: String, uid: Int64 = 0, gid: Int64 = 0, mtime: Int64 = 0) throws {
        try add(TarHeader(path: path, kind: .symlink, mode: 0o777, uid: uid, gid: gid, mtime: mtime, linkTarget: target))
    }

    public func addHardlink(_ path: String, target: String) throws {
        try add(TarHeader(path: path, kind: .hardlink, mode: 0o644, linkTarget: target))
    }

    /// Ends the archive (writes the end-of-archive blocks) and flushes.
    public func finish() throws {
        guard !closed else { return }
        closed = true
        guard archive_write_close(a) == ARCHIVE_OK else { throw ImageError.system("tar close: \(error)", errno: 0) }
    }
}
