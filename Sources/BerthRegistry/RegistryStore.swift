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
///
/// Uploads are written to their own file while hashed and renamed into `blobs/` only once
/// their digest is verified, so no partial blob is ever visible. Names never collide with the
/// `_` directories: a repository path component cannot start with `_`.
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
    /// Serializes changes to links and tags (`writeAtomically` names its temporary file by pid).
    private let metadata = Mutex(())

    /// The largest manifest accepted, as distribution's default.
    public static let maximumManifestSize = 4 << 20

    public init(root: String) throws {
        self.root = FileSystem.absolute(root)
        do {
            for dir in ["blobs/sha256", "repositories", "uploads"] { try FileSystem.makeDirectories(self.root + "/" + dir, mode: 0o755) }
        } catch {
            throw RegistryError.storage("cannot create the registry root \(root): \(error)")
        }
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
            try FileSystem.makeDirectories(dir, mode: 0o755)
            try FileSystem.writeAtomically(dir + "/repository", Array(name.utf8))
            try FileSystem.writeAtomically(dir + "/startedat", Array(String(Int64(time(nil))).utf8))
            let fd = open(dir + "/data", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
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

    /// Stores bytes already in memory (a manifest) as a blob.
    private func storeBytes(_ bytes: [UInt8], as digest: Digest) throws(RegistryError) {
        if FileSystem.exists(blobPath(digest)) { return }
        do {
            try FileSystem.writeAtomically(blobPath(digest), bytes, durable: true)
        } catch {
            throw .storage("store \(digest): \(error)")
        }
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
        entries(repositoryPath(name) + "/_manifests/tags").filter { !$0.contains(".tmp-") }.sorted()
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
            guard let bytes = try? FileSystem.readBytes(dir + "/" + entry) else { return nil }
            return try? RegistryJSON.decoder.decode(Descriptor.self, from: Data(bytes))
        }.sorted { $0.digest < $1.digest }
    }

    func entries(_ path: String) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
    }

    private func writeMetadata(_ path: String, _ bytes: [UInt8]) throws(RegistryError) {
        let result: Result<Void, SystemError> = metadata.withLock { _ in
            do throws(SystemError) {
                try FileSystem.makeDirectories(String(path[..<path.lastIndex(of: "/")!]), mode: 0o755)
                try FileSystem.writeAtomically(path, bytes, durable: true)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        if case .failure(let error) = result { throw .storage("write \(path): \(error)") }
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
