import BerthOCI
import BerthOS
import FoundationEssentials
import Glibc
import Synchronization

/// Content-addressed blobs in an OCI image layout directory (image-layout.md):
/// `oci-layout`, `index.json`, `blobs/sha256/<hex>`, plus `ingest/` for blobs being written.
///
/// A blob becomes visible only by an atomic rename after its digest and size were checked, so
/// a reader never sees half a blob and a failed write leaves nothing under `blobs/`. The
/// filesystem is the state; the in-memory part (leases, active ingests) only keeps garbage
/// collection from removing what a concurrent writer has not referenced yet.
public final class ContentStore: Sendable {
    public let root: String

    /// Holds the blobs ingested under it back from garbage collection until it ends, so a
    /// writer can store several blobs and then reference them without racing `gc`.
    public struct Lease: Sendable, Hashable {
        let id: UInt64
    }

    private struct State {
        var nextLease: UInt64 = 1
        var leases: [UInt64: Set<Digest>] = [:]
        var activeIngests: Set<String> = []
    }
    private let state = Mutex(State())

    private var blobsDirectory: String { root + "/blobs/sha256" }
    private var ingestDirectory: String { root + "/ingest" }
    private var indexPath: String { root + "/index.json" }

    /// Opens the layout at `root`, creating it when absent.
    public init(root: String) throws {
        self.root = FileSystem.absolute(root)
        try os { () throws(SystemError) in
            try FileSystem.makeDirectories(self.root + "/blobs/sha256", mode: 0o755)
            try FileSystem.makeDirectories(self.root + "/ingest", mode: 0o700)
        }
        let layout = self.root + "/oci-layout"
        if !FileSystem.exists(layout) {
            let bytes = try JSON.encode(ImageLayoutHeader())
            try os { () throws(SystemError) in try FileSystem.writeAtomically(layout, bytes, durable: true) }
        }
        if !FileSystem.exists(indexPath) {
            try writeIndex(ImageIndex(manifests: []))
        }
    }

    // MARK: Reading

    public func path(of digest: Digest) -> String { blobsDirectory + "/" + digest.hex }

    public func has(_ digest: Digest) -> Bool { FileSystem.exists(path(of: digest)) }

    /// The size of a stored blob.
    public func size(of digest: Digest) throws -> Int64 {
        var st = stat()
        guard stat(path(of: digest), &st) == 0 else {
            if errno == ENOENT { throw ImageError.notFound("blob \(digest) not found in the content store") }
            throw ImageError.system("stat blob \(digest)", errno: errno)
        }
        return Int64(st.st_size)
    }

    /// Opens a blob for reading; the caller closes the descriptor.
    public func open(_ digest: Digest) throws -> Int32 {
        do { return try FD.open(path(of: digest), O_RDONLY) } catch let error as ImageError {
            if error.code == .notFound { throw ImageError.notFound("blob \(digest) not found in the content store") }
            throw error
        }
    }

    /// The whole blob in memory, for manifests and configs.
    public func read(_ digest: Digest) throws -> [UInt8] {
        let fd = try open(digest)
        defer { close(fd) }
        return try FD.readAll(fd, what: "read blob \(digest)")
    }

    /// Every stored blob with its size.
    public func list() throws -> [Digest: Int64] {
        var out: [Digest: Int64] = [:]
        for name in try directoryEntries(blobsDirectory) {
            guard let d = try? Digest(hex: name) else { continue }
            if let size = try? size(of: d) { out[d] = size }
        }
        return out
    }

    // MARK: Writing

    public func beginLease() -> Lease {
        state.withLock { s in
            let id = s.nextLease
            s.nextLease += 1
            s.leases[id] = []
            return Lease(id: id)
        }
    }

    public func endLease(_ lease: Lease) {
        _ = state.withLock { $0.leases.removeValue(forKey: lease.id) }
    }

    /// A writer for one blob; see `IngestWriter`.
    public func writer(lease: Lease? = nil) throws -> IngestWriter {
        let name = FD.randomSuffix()
        let path = ingestDirectory + "/" + name
        let fd = try FD.open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        state.withLock { _ = $0.activeIngests.insert(name) }
        return IngestWriter(store: self, name: name, tempPath: path, fd: fd, lease: lease)
    }

    /// Stores bytes from a stream. With `expected` or `size`, a mismatch throws and stores nothing.
    public func ingest(from reader: inout some ByteReader, mediaType: String = "application/octet-stream",
                       expected: Digest? = nil, size: Int64? = nil, lease: Lease? = nil) throws -> Descriptor {
        let w = try writer(lease: lease)
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = try chunk.withUnsafeMutableBytes { b in try reader.read(into: b) }
            if n == 0 { break }
            try chunk.withUnsafeBytes { b in try w.write(UnsafeRawBufferPointer(rebasing: b[0..<n])) }
            if let size, w.count > size {
                w.abort()
                throw ImageError.invalid("size mismatch: expected \(size) bytes, got more")
            }
        }
        return try w.commit(mediaType: mediaType, expected: expected, size: size)
    }

    public func ingest(fileDescriptor fd: Int32, mediaType: String = "application/octet-stream",
                       expected: Digest? = nil, size: Int64? = nil, lease: Lease? = nil) throws -> Descriptor {
        var r = FileDescriptorReader(fd: fd)
        return try ingest(from: &r, mediaType: mediaType, expected: expected, size: size, lease: lease)
    }

    public func ingest(bytes: [UInt8], mediaType: String = "application/octet-stream",
                       expected: Digest? = nil, lease: Lease? = nil) throws -> Descriptor {
        var r = BytesReader(bytes)
        return try ingest(from: &r, mediaType: mediaType, expected: expected, size: Int64(bytes.count), lease: lease)
    }

    public func ingest(path: String, mediaType: String = "application/octet-stream",
                       expected: Digest? = nil, lease: Lease? = nil) throws -> Descriptor {
        let fd = try FD.open(path, O_RDONLY)
        defer { close(fd) }
        return try ingest(fileDescriptor: fd, mediaType: mediaType, expected: expected, lease: lease)
    }

    /// Called by a writer once its bytes are verified: renames the temporary file into place.
    fileprivate func publish(_ w: IngestWriter, digest: Digest) throws {
        let final = path(of: digest)
        // Register with the lease before the blob becomes visible, so gc never sees it unheld.
        if let lease = w.lease { state.withLock { _ = $0.leases[lease.id]?.insert(digest) } }
        if FileSystem.exists(final) {
            unlink(w.tempPath)
        } else if rename(w.tempPath, final) != 0 {
            let e = errno
            unlink(w.tempPath)
            throw ImageError.system("rename \(w.tempPath) to \(final)", errno: e)
        }
        finished(w)
    }

    fileprivate func finished(_ w: IngestWriter) {
        _ = state.withLock { $0.activeIngests.remove(w.name) }
    }

    // MARK: Deleting

    public func delete(_ digest: Digest) throws {
        if unlink(path(of: digest)) != 0 {
            if errno == ENOENT { throw ImageError.notFound("blob \(digest) not found in the content store") }
            throw ImageError.system("delete blob \(digest)", errno: errno)
        }
    }

    public struct CollectionResult: Sendable {
        public var removed: [Digest] = []
        public var bytes: Int64 = 0
    }

    /// Removes every blob not reachable from `roots` (manifests or indexes, followed through
    /// their config, layers, manifests and subject), nor from `index.json`, nor held by a
    /// lease; and abandoned files under `ingest/`.
    public func collectGarbage(roots: Set<Digest>) throws -> CollectionResult {
        var start = roots
        for d in try readIndex().manifests { start.insert(d.digest) }
        var reachable = Set<Digest>()
        var queue = Array(start)
        while let d = queue.popLast() {
            guard reachable.insert(d).inserted else { continue }
            guard let size = try? size(of: d), size < 4 << 20, let bytes = try? read(d) else { continue }
            // Any blob might be a manifest or index; configs and layers decode to no links.
            guard let links = try? JSONDecoder().decode(Links.self, from: Data(bytes)) else { continue }
            for x in links.manifests ?? [] { queue.append(x.digest) }
            for x in links.layers ?? [] { queue.append(x.digest) }
            if let c = links.config { queue.append(c.digest) }
            if let s = links.subject { queue.append(s.digest) }
        }
        var result = CollectionResult()
        let present = try list()
        let (held, active) = state.withLock { s in (s.leases.values.reduce(into: Set<Digest>()) { $0.formUnion($1) }, s.activeIngests) }
        for (d, size) in present.sorted(by: { $0.key < $1.key }) where !reachable.contains(d) && !held.contains(d) {
            if unlink(path(of: d)) == 0 {
                result.removed.append(d)
                result.bytes += size
            }
        }
        for name in try directoryEntries(ingestDirectory) where !active.contains(name) {
            unlink(ingestDirectory + "/" + name)
        }
        return result
    }

    private struct Link: Decodable { var digest: Digest }
    private struct Links: Decodable {
        var manifests: [Link]?
        var layers: [Link]?
        var config: Link?
        var subject: Link?
    }

    // MARK: index.json

    public func readIndex() throws -> ImageIndex {
        let bytes = try os { () throws(SystemError) in try FileSystem.readBytes(indexPath) }
        return try JSON.decode(ImageIndex.self, from: bytes, what: indexPath)
    }

    public func writeIndex(_ index: ImageIndex) throws {
        let bytes = try JSON.encode(index)
        try os { () throws(SystemError) in try FileSystem.writeAtomically(indexPath, bytes, durable: true) }
    }

    private func directoryEntries(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw ImageError.system("open directory \(path)", errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let e = readdir(dir) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}

/// Writes one blob into `ingest/` while hashing it; `commit` verifies and publishes it,
/// `abort` (or dropping the writer) removes the temporary file. One owner at a time.
public final class IngestWriter {
    let store: ContentStore
    let name: String
    let tempPath: String
    let lease: ContentStore.Lease?
    private var fd: Int32
    private var hasher = SHA256()
    private var done = false

    init(store: ContentStore, name: String, tempPath: String, fd: Int32, lease: ContentStore.Lease?) {
        self.store = store; self.name = name; self.tempPath = tempPath; self.fd = fd; self.lease = lease
    }

    deinit { if !done { abort() } }

    /// Bytes written so far.
    public var count: Int64 { Int64(hasher.count) }

    public func write(_ buffer: UnsafeRawBufferPointer) throws {
        precondition(!done, "write after commit or abort")
        hasher.update(buffer)
        do { try FD.writeAll(fd, buffer, what: tempPath) } catch {
            abort()
            throw error
        }
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { b in try write(b) }
    }

    /// Verifies size and digest, flushes to disk and renames into `blobs/`.
    public func commit(mediaType: String = "application/octet-stream", expected: Digest? = nil,
                       size: Int64? = nil) throws -> Descriptor {
        precondition(!done, "commit after commit or abort")
        let written = count
        let digest = hasher.finalize()
        if let size, size != written {
            abort()
            throw ImageError.invalid("size mismatch: expected \(size) bytes, got \(written)")
        }
        if let expected, expected != digest {
            abort()
            throw ImageError.invalid("digest mismatch: expected \(expected), got \(digest)")
        }
        fchmod(fd, 0o444)
        if fsync(fd) != 0 {
            let e = errno
            abort()
            throw ImageError.system("fsync \(tempPath)", errno: e)
        }
        close(fd)
        fd = -1
        done = true
        do { try store.publish(self, digest: digest) } catch {
            store.finished(self)
            throw error
        }
        return Descriptor(mediaType: mediaType, digest: digest, size: written)
    }

    public func abort() {
        guard !done else { return }
        done = true
        if fd >= 0 { close(fd); fd = -1 }
        unlink(tempPath)
        store.finished(self)
    }
}

/// JSON as the stores write it: sorted keys, so equal values give equal bytes and digests.
enum JSON {
    static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do { return Array(try e.encode(value)) } catch { throw ImageError.system("encode JSON: \(error)", errno: 0) }
    }

    static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8], what: String) throws -> T {
        do { return try JSONDecoder().decode(type, from: Data(bytes)) } catch {
            throw ImageError.invalid("malformed \(what): \(describe(error))")
        }
    }

    /// DecodingError's default text is long; keep the path and the reason.
    static func describe(_ error: any Error) -> String {
        guard let e = error as? DecodingError else { return "\(error)" }
        func path(_ c: [any CodingKey]) -> String { c.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".") }
        switch e {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
            return (c.codingPath.isEmpty ? "" : path(c.codingPath) + ": ") + c.debugDescription
        case .keyNotFound(let k, let c):
            return "missing key \(path(c.codingPath + [k]))"
        @unknown default:
            return "\(e)"
        }
    }
}
