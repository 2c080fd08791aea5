import BerthOCI
import BerthOS
import FoundationEssentials
import Glibc
import NIOCore
import Synchronization

/// The registry's storage: content-addressed blobs on the filesystem, one copy of each across
/// repositories, and per-repository links that say which blobs, manifests and tags it has.
///
///     <root>/blobs/sha256/<hex>                                 blob and manifest bytes
///     <root>/repositories/<name>/_layers/sha256/<hex>           the repository has this blob
///     <root>/repositories/<name>/_manifests/revisions/sha256/<hex>   ... this manifest (its media type)
///     <root>/repositories/<name>/_manifests/tags/<tag>          the tag's manifest digest
///     <root>/repositories/<name>/_referrers/sha256/<subject>/<hex>   a referrer's descriptor (JSON)
///     <root>/uploads/<id>/{data,repository,startedat}           uploads in progress
///     <root>/lock                                               flock: shared while served, exclusive for GC
///
/// Uploads are written to their own file while hashed and renamed into `blobs/` only once
/// their digest is verified, so no partial blob is ever visible; every other file is written
/// to a temporary file of its own (`.tmp-XXXXXX`, never a valid tag or digest) and renamed.
/// Names never collide with the `_` directories: a repository path component cannot start
/// with `_`. Only the registry's user may read the store (0700 directories, 0600 files): the
/// blobs are what the registry's authentication protects.
public final class RegistryStore: Sendable {
    public let root: String

    /// The hash of each upload's bytes so far, so a chunk is hashed once, as it arrives. Lost
    /// on restart: the file is then hashed again when the upload continues.
    private struct UploadProgress {
        var hasher: SHA256
        var size: Int64
    }

    private struct UploadTable {
        var idle: [String: UploadProgress] = [:]
        /// Uploads a request is writing to right now; a second one at once is refused.
        var busy: Set<String> = []
    }

    private let uploads = Mutex(UploadTable())

    /// The largest manifest accepted, as distribution's default.
    public static let maximumManifestSize = 4 << 20

    public init(root: String) throws(RegistryError) {
        self.root = FileSystem.absolute(root)
        do {
            for dir in ["blobs/sha256", "repositories", "uploads"] { try FileSystem.makeDirectories(self.root + "/" + dir, mode: 0o700) }
        } catch {
            throw RegistryError.storage("cannot create the registry root \(root): \(error)")
        }
        // Stores made before were world-readable: closing the root shuts others out at once,
        // the walk fixes what is below it.
        guard chmod(self.root, 0o700) == 0 else {
            throw RegistryError.storage("cannot restrict the registry root \(root): \(String(cString: strerror(errno)))")
        }
        Self.restrictModes(below: self.root)
    }

    /// Takes away group and other access under `path`: directories 0700, files 0600.
    static func restrictModes(below path: String) {
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
            let child = path + "/" + entry
            var st = stat()
            guard lstat(child, &st) == 0 else { continue }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                if st.st_mode & 0o077 != 0 { chmod(child, 0o700) }
                restrictModes(below: child)
            case S_IFREG:
                if st.st_mode & 0o077 != 0 { chmod(child, 0o600) }
            default:
                break  // nothing else belongs here, and a symlink's target is not ours to change
            }
        }
    }

    // MARK: Lock

    /// How a process uses the store: any number serve it at once; garbage collection needs it
    /// alone, since a blob pushed during the sweep but not yet referenced would be collected.
    public enum Use: Sendable {
        case serving
        case collecting
    }

    /// Holds the store's lock until released or deinitialized (the lock goes with the fd).
    public final class Lock: Sendable {
        private let fd: Int32
        fileprivate init(fd: Int32) { self.fd = fd }
        deinit { close(fd) }
    }

    /// Takes the store's lock for `use` without waiting; refuses with a message saying who has it.
    public func lock(for use: Use) throws(RegistryError) -> Lock {
        let path = root + "/lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .storage("open \(path): \(String(cString: strerror(errno)))") }
        let operation = use == .serving ? LOCK_SH : LOCK_EX
        while flock(fd, operation | LOCK_NB) != 0 {
            let error = errno
            if error == EINTR { continue }
            close(fd)
            guard error == EWOULDBLOCK else { throw .storage("lock \(path): \(String(cString: strerror(error)))") }
            switch use {
            case .serving:
                throw RegistryError(.unknown, "garbage collection is running on \(root): serve it once that has finished")
            case .collecting:
                throw RegistryError(.unknown, "\(root) is in use by a running berth-registry (serve, or another garbage-collect): stop it before collecting garbage, or use --dry-run")
            }
        }
        return Lock(fd: fd)
    }

    // MARK: Paths

    func blobPath(_ digest: Digest) -> String { "\(root)/blobs/sha256/\(digest.hex)" }
    func repositoryPath(_ name: String) -> String { "\(root)/repositories/\(name)" }
    func layerLink(_ name: String, _ digest: Digest) -> String { "\(repositoryPath(name))/_layers/sha256/\(digest.hex)" }
    func revisionLink(_ name: String, _ digest: Digest) -> String { "\(repositoryPath(name))/_manifests/revisions/sha256/\(digest.hex)" }
    func tagPath(_ name: String, _ tag: String) -> String { "\(repositoryPath(name))/_manifests/tags/\(tag)" }
    func referrersDirectory(_ name: String, _ subject: Digest) -> String { "\(repositoryPath(name))/_referrers/sha256/\(subject.hex)" }
    func uploadDirectory(_ id: String) -> String { "\(root)/uploads/\(id)" }

    // MARK: Blobs

    /// The size of a blob the repository has; nil if it has not (or its bytes are gone).
    public func blobSize(_ name: String, _ digest: Digest) -> Int64? {
        guard FileSystem.exists(layerLink(name, digest)) || FileSystem.exists(revisionLink(name, digest)) else { return nil }
        var st = stat()
        guard stat(blobPath(digest), &st) == 0 else { return nil }
        return Int64(st.st_size)
    }

    /// Opens a blob the repository has, for reading.
    public func openBlob(_ name: String, _ digest: Digest) throws(RegistryError) -> (fd: Int32, size: Int64) {
        guard FileSystem.exists(layerLink(name, digest)) || FileSystem.exists(revisionLink(name, digest)) else {
            throw .blobUnknown(digest.string)
        }
        let fd = open(blobPath(digest), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .blobUnknown(digest.string) }
        var st = stat()
        fstat(fd, &st)
        return (fd, Int64(st.st_size))
    }

    /// Removes the repository's link to a blob; the bytes go at the next garbage collection.
    public func deleteBlob(_ name: String, _ digest: Digest) throws(RegistryError) {
        guard unlink(layerLink(name, digest)) == 0 else { throw .blobUnknown(digest.string) }
    }

    /// Links a blob of repository `from` into `name` (a cross-repository mount); false when
    /// `from` does not have it, and the client uploads instead.
    public func mount(_ digest: Digest, from: String, into name: String) throws(RegistryError) -> Bool {
        guard Names.isValidRepository(from), blobSize(from, digest) != nil else { return false }
        try link(name, digest)
        return true
    }

    private func link(_ name: String, _ digest: Digest) throws(RegistryError) {
        try writeMetadata(layerLink(name, digest), Array(digest.string.utf8))
    }

    // MARK: Uploads

    /// Starts an upload session for repository `name`; returns its id.
    public func startUpload(_ name: String) throws(RegistryError) -> String {
        let id = UUIDText.random()
        let dir = uploadDirectory(id)
        do {
            try FileSystem.makeDirectories(dir, mode: 0o700)
            try Self.writeAtomically(dir + "/repository", Array(name.utf8), durable: false)
            try Self.writeAtomically(dir + "/startedat", Array(String(Int64(time(nil))).utf8), durable: false)
            let fd = open(dir + "/data", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw SystemError("create \(dir)/data") }
            close(fd)
        } catch {
            try? FileSystem.removeTree(dir)
            throw .storage("cannot start an upload: \(error)")
        }
        uploads.withLock { $0.idle[id] = UploadProgress(hasher: SHA256(), size: 0) }
        return id
    }

    /// The bytes an upload holds so far.
    public func uploadSize(_ name: String, _ id: String) throws(RegistryError) -> Int64 {
        try checkUpload(name, id)
        var st = stat()
        guard stat(uploadDirectory(id) + "/data", &st) == 0 else { throw .uploadUnknown(id) }
        return Int64(st.st_size)
    }

    /// Appends `body` to an upload, hashing it on the way; `start` (from `Content-Range`) must
    /// be where the upload ends. Returns the new size.
    public func append(_ name: String, _ id: String, start: Int64?, body: some AsyncSequence<ByteBuffer, any Error> & Sendable) async throws -> Int64 {
        var progress = try claim(name, id)
        defer { release(id, progress) }
        if let start, start != progress.size {
            var error = RegistryError(.rangeInvalid, "chunk starts at \(start) but the upload has \(progress.size) bytes")
            error.headers.add(name: "Range", value: "0-\(max(0, progress.size - 1))")
            error.headers.add(name: "Docker-Upload-UUID", value: id)
            throw error
        }
        try await write(body, to: uploadDirectory(id) + "/data", progress: &progress)
        return progress.size
    }

    /// Completes an upload: appends the last bytes, checks the digest and moves the blob into
    /// place. On a mismatch the upload is discarded and nothing is stored.
    public func finishUpload(_ name: String, _ id: String, digest: Digest, body: some AsyncSequence<ByteBuffer, any Error> & Sendable) async throws {
        var progress = try claim(name, id)
        let data = uploadDirectory(id) + "/data"
        do {
            try await write(body, to: data, progress: &progress)
        } catch {
            release(id, progress)
            throw error
        }
        let actual = progress.hasher.finalize()
        uploads.withLock { _ = $0.busy.remove(id) }
        guard actual == digest else {
            try? FileSystem.removeTree(uploadDirectory(id))
            throw RegistryError.digestInvalid("provided digest did not match uploaded content", detail: "expected \(digest), got \(actual)")
        }
        try commit(data, as: digest)
        try? FileSystem.removeTree(uploadDirectory(id))
        try link(name, digest)
    }

    /// A whole blob in one request (`POST ...?digest=`).
    public func putBlob(_ name: String, digest: Digest, body: some AsyncSequence<ByteBuffer, any Error> & Sendable) async throws {
        let id = try startUpload(name)
        try await finishUpload(name, id, digest: digest, body: body)
    }

    public func cancelUpload(_ name: String, _ id: String) throws(RegistryError) {
        try checkUpload(name, id)
        let busy = uploads.withLock { table in
            table.idle[id] = nil
            return table.busy.contains(id)
        }
        guard !busy else { throw RegistryError(.blobUploadInvalid, "the upload is being written by another request", detail: id) }
        try? FileSystem.removeTree(uploadDirectory(id))
    }

    /// Removes uploads nothing has written to for `idle` (by their file's mtime, so those of
    /// an earlier run too): their partial file and what is held here. A request writing one
    /// keeps it. Returns their ids.
    public func purgeUploads(idleFor idle: Duration) -> [String] {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var purged: [String] = []
        for id in entries(root + "/uploads") where UUIDText.isValid(id) {
            let dir = uploadDirectory(id)
            var st = stat()
            guard stat(dir + "/data", &st) == 0 || stat(dir, &st) == 0 else { continue }
            let age = Duration.seconds(now.tv_sec - st.st_mtim.tv_sec) + .nanoseconds(now.tv_nsec - st.st_mtim.tv_nsec)
            guard age > idle else { continue }
            // Claimed for the removal, so a request arriving meanwhile is refused, not torn.
            let claimed = uploads.withLock { table in
                guard !table.busy.contains(id) else { return false }
                table.busy.insert(id)
                table.idle[id] = nil
                return true
            }
            guard claimed else { continue }
            try? FileSystem.removeTree(dir)
            uploads.withLock { _ = $0.busy.remove(id) }
            purged.append(id)
        }
        // State of uploads whose directory went another way (garbage-collect).
        uploads.withLock { table in
            for id in table.idle.keys where !FileSystem.exists(uploadDirectory(id)) { table.idle[id] = nil }
        }
        return purged
    }

    /// Uploads with state held in memory, and those a request is writing (for tests).
    var uploadsInMemory: Int { uploads.withLock { $0.idle.count + $0.busy.count } }
    var uploadsBusy: Int { uploads.withLock { $0.busy.count } }

    private func checkUpload(_ name: String, _ id: String) throws(RegistryError) {
        // The id names a directory: nothing but what startUpload makes is accepted.
        guard UUIDText.isValid(id), let owner = try? FileSystem.readString(uploadDirectory(id) + "/repository"), owner == name else {
            throw .uploadUnknown(id)
        }
    }

    /// Takes an upload for one request; its hash state is rebuilt from the file after a restart.
    private func claim(_ name: String, _ id: String) throws(RegistryError) -> UploadProgress {
        try checkUpload(name, id)
        let taken: UploadProgress?? = uploads.withLock { table in
            guard !table.busy.contains(id) else { return .none }
            table.busy.insert(id)
            return .some(table.idle.removeValue(forKey: id))
        }
        guard let taken else { throw RegistryError(.blobUploadInvalid, "the upload is being written by another request", detail: id) }
        if let progress = taken { return progress }
        do {
            return try rehash(uploadDirectory(id) + "/data")
        } catch {
            uploads.withLock { _ = $0.busy.remove(id) }
            throw error
        }
    }

    private func release(_ id: String, _ progress: UploadProgress) {
        uploads.withLock { table in
            table.busy.remove(id)
            if FileSystem.exists(uploadDirectory(id)) { table.idle[id] = progress }
        }
    }

    private func rehash(_ path: String) throws(RegistryError) -> UploadProgress {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .storage("open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var progress = UploadProgress(hasher: SHA256(), size: 0)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n >= 0 else { throw .storage("read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { return progress }
            buffer.withUnsafeBytes { progress.hasher.update(UnsafeRawBufferPointer(rebasing: $0[..<n])) }
            progress.size += Int64(n)
        }
    }

    /// Streams a request body onto the end of `path`, hashing as it goes; the size advances
    /// only by what reached the file.
    private func write(_ body: some AsyncSequence<ByteBuffer, any Error>, to path: String, progress: inout UploadProgress) async throws {
        let fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else { throw RegistryError.storage("open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        // A chunk that failed half way (client gone) leaves bytes the hash has not seen.
        defer { _ = ftruncate(fd, off_t(progress.size)) }
        for try await buffer in body {
            try buffer.withUnsafeReadableBytes { bytes throws(RegistryError) in
                var offset = 0
                while offset < bytes.count {
                    let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                    if n < 0, errno == EINTR { continue }
                    guard n > 0 else { throw .storage("write \(path): \(String(cString: strerror(errno)))") }
                    offset += n
                }
                progress.hasher.update(bytes)
            }
            progress.size += Int64(buffer.readableBytes)
        }
    }

    /// Makes a verified file the blob `digest`: synced, then renamed into place.
    private func commit(_ path: String, as digest: Digest) throws(RegistryError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0, fsync(fd) == 0 else {
            if fd >= 0 { close(fd) }
            throw .storage("sync \(path): \(String(cString: strerror(errno)))")
        }
        close(fd)
        guard rename(path, blobPath(digest)) == 0 else {
            throw .storage("store blob \(digest): \(String(cString: strerror(errno)))")
        }
    }

    /// Stores bytes already in memory (a manifest) as a blob. Two pushes of one manifest at
    /// once each write their own temporary file; the second rename replaces equal bytes.
    private func storeBytes(_ bytes: [UInt8], as digest: Digest) throws(RegistryError) {
        if FileSystem.exists(blobPath(digest)) { return }
        do {
            try Self.writeAtomically(blobPath(digest), bytes, durable: true)
        } catch {
            throw .storage("store \(digest): \(error)")
        }
    }

    /// Writes `path` through a temporary file in its directory, unique to this write (mkstemp:
    /// created exclusively, 0600), then renamed over it: readers see the old or the new bytes,
    /// and concurrent writers of one path, in this process or another, never share a file.
    static func writeAtomically(_ path: String, _ bytes: [UInt8], durable: Bool) throws(SystemError) {
        let directory = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        var template = Array((directory + "/.tmp-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw SystemError("create a temporary file in \(directory)") }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        let temporary = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else {
                let error = SystemError("write \(temporary)")
                close(fd)
                unlink(temporary)
                throw error
            }
            offset += n
        }
        if durable, fsync(fd) != 0 {
            let error = SystemError("fsync \(temporary)")
            close(fd)
            unlink(temporary)
            throw error
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let error = SystemError("rename \(temporary) to \(path)")
            unlink(temporary)
            throw error
        }
        if durable { try FileSystem.syncDirectory(directory) }
    }

    // MARK: Manifests

    /// A manifest's bytes, media type and digest, by tag or digest.
    public func manifest(_ name: String, _ reference: String) throws(RegistryError) -> (bytes: [UInt8], mediaType: String, digest: Digest) {
        let digest = try resolve(name, reference)
        guard let mediaType = try? FileSystem.readString(revisionLink(name, digest)),
              let bytes = try? FileSystem.readBytes(blobPath(digest))
        else { throw .manifestUnknown(reference) }
        return (bytes, mediaType, digest)
    }

    /// The digest a tag or digest reference names in the repository.
    public func resolve(_ name: String, _ reference: String) throws(RegistryError) -> Digest {
        if reference.contains(":") {
            guard let digest = try? Digest(reference) else { throw .digestInvalid("invalid digest", detail: reference) }
            guard FileSystem.exists(revisionLink(name, digest)) else { throw .manifestUnknown(reference) }
            return digest
        }
        guard Names.isValidTag(reference) else { throw RegistryError(.tagInvalid, "invalid tag", detail: reference) }
        guard let text = try? FileSystem.readString(tagPath(name, reference)), let digest = try? Digest(text) else {
            throw .manifestUnknown(reference)
        }
        return digest
    }

    /// Stores a manifest pushed under `reference` after checking it: a known media type, valid
    /// JSON of that type, a matching digest when pushed by digest, and every blob (or child
    /// manifest, for an index) present in the repository. Returns its digest and subject.
    public func putManifest(_ name: String, _ reference: String, bytes: [UInt8], contentType: String?) throws(RegistryError) -> (digest: Digest, subject: Digest?) {
        let digest = Digest.of(bytes)
        if reference.contains(":") {
            guard let wanted = try? Digest(reference) else { throw .digestInvalid("invalid digest", detail: reference) }
            guard wanted == digest else {
                throw .digestInvalid("manifest digest did not match the reference", detail: "expected \(wanted), got \(digest)")
            }
        } else if !Names.isValidTag(reference) {
            throw RegistryError(.tagInvalid, "invalid tag", detail: reference)
        }
        let parsed = try ParsedManifest(bytes: bytes, contentType: contentType)
        for reference in parsed.blobs where blobSize(name, reference.digest) == nil {
            throw RegistryError(.manifestBlobUnknown, "blob unknown to registry", detail: reference.digest.string)
        }
        for child in parsed.children where !FileSystem.exists(revisionLink(name, child.digest)) {
            throw RegistryError(.manifestBlobUnknown, "manifest unknown to registry", detail: child.digest.string)
        }
        try storeBytes(bytes, as: digest)
        try writeMetadata(revisionLink(name, digest), Array(parsed.mediaType.utf8))
        if let subject = parsed.subject {
            let descriptor = Descriptor(
                mediaType: parsed.mediaType, digest: digest, size: Int64(bytes.count),
                annotations: parsed.annotations, artifactType: parsed.artifactType)
            try writeMetadata(referrersDirectory(name, subject.digest) + "/" + digest.hex, (try? RegistryJSON.encode(descriptor)) ?? [])
        }
        if !reference.contains(":") { try writeMetadata(tagPath(name, reference), Array(digest.string.utf8)) }
        return (digest, parsed.subject?.digest)
    }

    /// Deletes a manifest by digest (with the tags that point at it), or just a tag.
    public func deleteManifest(_ name: String, _ reference: String) throws(RegistryError) {
        let digest = try resolve(name, reference)
        if !reference.contains(":") {
            unlink(tagPath(name, reference))
            return
        }
        if let bytes = try? FileSystem.readBytes(blobPath(digest)),
           let parsed = try? ParsedManifest(bytes: bytes, contentType: nil), let subject = parsed.subject {
            unlink(referrersDirectory(name, subject.digest) + "/" + digest.hex)
        }
        for tag in tags(name) where (try? FileSystem.readString(tagPath(name, tag))) == digest.string {
            unlink(tagPath(name, tag))
        }
        unlink(revisionLink(name, digest))
    }

    // MARK: Listings

    public func repositoryExists(_ name: String) -> Bool {
        FileSystem.isDirectory(repositoryPath(name) + "/_manifests") || FileSystem.isDirectory(repositoryPath(name) + "/_layers")
    }

    /// The repository's tags, sorted.
    public func tags(_ name: String) -> [String] {
        entries(repositoryPath(name) + "/_manifests/tags").filter { !Self.isTemporary($0) }.sorted()
    }

    /// Every repository, sorted: directories under `repositories/` holding blobs or manifests.
    public func repositories() -> [String] {
        var found: Set<String> = []
        func walk(_ relative: String) {
            let path = relative.isEmpty ? root + "/repositories" : repositoryPath(relative)
            for entry in entries(path) {
                if entry == "_manifests" || entry == "_layers" {
                    found.insert(relative)
                } else if !entry.hasPrefix("_"), FileSystem.isDirectory(path + "/" + entry) {
                    walk(relative.isEmpty ? entry : relative + "/" + entry)
                }
            }
        }
        walk("")
        return found.sorted()
    }

    /// Manifests in the repository whose `subject` is `digest` (OCI 1.1 referrers).
    public func referrers(_ name: String, _ digest: Digest) -> [Descriptor] {
        let dir = referrersDirectory(name, digest)
        return entries(dir).compactMap { entry in
            guard !Self.isTemporary(entry), let bytes = try? FileSystem.readBytes(dir + "/" + entry) else { return nil }
            return try? RegistryJSON.decoder.decode(Descriptor.self, from: Data(bytes))
        }.sorted { $0.digest < $1.digest }
    }

    func entries(_ path: String) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
    }

    /// A temporary file of `writeAtomically` (a tag cannot start with "."), or one left by
    /// older versions, which named them `<name>.tmp-<pid>`.
    static func isTemporary(_ entry: String) -> Bool {
        if entry.hasPrefix(".") { return true }
        guard let dot = entry.lastIndex(of: "."), entry[dot...].hasPrefix(".tmp-") else { return false }
        let pid = entry[entry.index(dot, offsetBy: 5)...]
        return !pid.isEmpty && pid.allSatisfy { $0.isASCII && $0.isNumber }
    }

    private func writeMetadata(_ path: String, _ bytes: [UInt8]) throws(RegistryError) {
        do {
            try FileSystem.makeDirectories(String(path[..<path.lastIndex(of: "/")!]), mode: 0o700)
            try Self.writeAtomically(path, bytes, durable: true)
        } catch {
            throw .storage("write \(path): \(error)")
        }
    }
}

/// Random upload ids in the 8-4-4-4-12 form distribution uses.
enum UUIDText {
    static func random() -> String {
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
        bytes[6] = (bytes[6] & 0x0f) | 0x40
        bytes[8] = (bytes[8] & 0x3f) | 0x80
        let hex = bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
        let c = Array(hex)
        return [c[0..<8], c[8..<12], c[12..<16], c[16..<20], c[20..<32]].map { String($0) }.joined(separator: "-")
    }

    static func isValid(_ text: String) -> Bool {
        text.utf8.count == 36 && text.allSatisfy { $0 == "-" || $0.isHexDigit && !$0.isUppercase }
    }
}

enum RegistryJSON {
    static let decoder = JSONDecoder()
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        return e
    }()

    static func encode(_ value: some Encodable) throws -> [UInt8] { Array(try encoder.encode(value)) }
}
