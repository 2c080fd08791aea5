import BerthOCI
import BerthOS
import Glibc

/// `docker load` and `docker save`: the docker-archive tar (`manifest.json` with
/// `[{Config, RepoTags, Layers}]`, classic `<hex>.json` + `<id>/layer.tar` or Docker 25's
/// `blobs/sha256/…`) and OCI layout tars (`index.json`, `oci-layout`, `blobs/`).
extension ImageStore {
    public struct LoadedImage: Sendable, Hashable {
        public var id: Digest
        public var manifestDigest: Digest
        /// Familiar forms: `busybox:latest`.
        public var tags: [String]
    }

    /// Loads every image of an archive read from `fd` (plain or compressed). Every digest is
    /// checked (blob names, config digest, DiffIDs against layer content) and every layer
    /// unpacked before anything is tagged; on any failure nothing is registered and the blobs
    /// and layers stored so far are collected.
    public func load(from fd: Int32) throws -> [LoadedImage] {
        let lease = content.beginLease()
        defer { content.endLease(lease) }
        do {
            let archive = try ArchiveFiles(fd: fd, content: content, lease: lease)
            let pending: [Pending]
            if archive.has("manifest.json") {
                pending = try loadDockerArchive(archive, lease: lease)
            } else if archive.has("index.json") {
                pending = try loadOCILayout(archive)
            } else {
                throw ImageError.invalid("not an image archive: it has neither manifest.json nor index.json")
            }
            for p in pending {
                let manifest = try JSON.decode(ImageManifest.self, from: try content.read(p.record.manifest.digest),
                                               what: "manifest \(p.record.manifest.digest)")
                try unpack(layers: manifest.layers, diffIDs: p.record.diffIDs)
            }
            try register(pending)
            return pending.map {
                LoadedImage(id: $0.record.id, manifestDigest: $0.record.manifest.digest, tags: $0.tags.map(\.familiarString))
            }
        } catch {
            content.endLease(lease)
            _ = try? collectGarbage()
            throw error
        }
    }

    public func load(path: String) throws -> [LoadedImage] {
        let fd = try FD.open(path, O_RDONLY)
        defer { close(fd) }
        return try load(from: fd)
    }

    private func loadDockerArchive(_ archive: ArchiveFiles, lease: ContentStore.Lease) throws -> [Pending] {
        let entries = try JSON.decode([DockerArchiveManifestEntry].self, from: try archive.read("manifest.json"),
                                      what: "manifest.json")
        guard !entries.isEmpty else { throw ImageError.invalid("manifest.json lists no images") }
        // Docker 25+ also writes an OCI index: reuse its manifests so digests survive a round trip.
        let known = archive.has("index.json") ? (try? ociManifests(archive)) ?? [] : []
        var out: [Pending] = []
        for (n, entry) in entries.enumerated() {
            let what = "manifest.json entry \(n)"
            let configDesc = try archive.blob(entry.config, what: "\(what): config")
            try ArchiveFiles.checkDocumentSize(configDesc.size, what: "image config \(entry.config)")
            let imageConfig = try JSON.decode(ImageConfig.self, from: try content.read(configDesc.digest),
                                              what: "image config \(entry.config)")
            let diffIDs = imageConfig.rootfs.diffIDs
            guard diffIDs.count == entry.layers.count else {
                throw ImageError.invalid("\(what): \(entry.layers.count) layers but the config lists \(diffIDs.count) DiffIDs")
            }
            var layers: [Descriptor] = []
            for (path, diffID) in zip(entry.layers, diffIDs) {
                let blob = try archive.blob(path, what: "\(what): layer")
                layers.append(try verifyLayer(blob, diffID: diffID, what: "layer \(path)"))
            }
            let tags = try (entry.repoTags ?? []).map { t -> Reference in
                let ref = try Reference(parsing: t)
                guard ref.digest == nil else { throw ImageError.invalid("\(what): RepoTag \(t) has a digest") }
                return ref.withDefaultTag()
            }
            let config = Descriptor(mediaType: MediaType.imageConfig, digest: configDesc.digest, size: configDesc.size)
            let manifestDesc: Descriptor
            if let m = known.first(where: { $0.manifest.config.digest == config.digest && $0.manifest.layers.map(\.digest) == layers.map(\.digest) }) {
                manifestDesc = m.descriptor
            } else {
                let manifest = ImageManifest(config: config, layers: layers)
                manifestDesc = try content.ingest(bytes: try JSON.encode(manifest), mediaType: MediaType.imageManifest, lease: lease)
            }
            out.append(Pending(record: record(manifest: manifestDesc, config: config, imageConfig: imageConfig, layers: layers),
                               tags: tags))
        }
        return out
    }

    /// A layer's descriptor after checking that its uncompressed content hashes to `diffID`.
    func verifyLayer(_ blob: Descriptor, diffID: Digest, what: String) throws -> Descriptor {
        let fd = try content.open(blob.digest)
        defer { close(fd) }
        var magic = [UInt8](repeating: 0, count: 4)
        let n = pread(fd, &magic, 4, 0)
        let compression = LayerCompression.detect(magic.prefix(max(0, n)))
        let actual = compression == .none ? blob.digest : try TarReader.diffID(fd: fd, what: what).digest
        guard actual == diffID else {
            throw ImageError.invalid("\(what): DiffID mismatch: the config expects \(diffID), the content is \(actual)")
        }
        return Descriptor(mediaType: compression.ociMediaType, digest: blob.digest, size: blob.size)
    }

    private struct FoundManifest {
        var descriptor: Descriptor
        var manifest: ImageManifest
        var names: [String]
    }

    /// The image manifests an OCI layout's index.json leads to, descending into nested indexes
    /// and picking this machine's platform from multi-platform ones. Blobs are verified.
    private func ociManifests(_ archive: ArchiveFiles) throws -> [FoundManifest] {
        let index = try JSON.decode(ImageIndex.self, from: try archive.read("index.json"), what: "index.json")
        var out: [FoundManifest] = []
        func visit(_ d: Descriptor, names: [String], depth: Int) throws {
            guard depth < 8 else { throw ImageError.invalid("index.json: indexes nested too deep") }
            if MediaType.isIndex(d.mediaType) {
                let child = try JSON.decode(ImageIndex.self, from: try archive.read(descriptor: d), what: "index \(d.digest)")
                let images = child.manifests.filter { MediaType.isManifest($0.mediaType) || MediaType.isIndex($0.mediaType) }
                let here = images.filter { $0.platform.map { Platform.current.matches($0) } ?? true }
                guard !here.isEmpty || images.isEmpty else {
                    throw ImageError.invalid("index \(d.digest) has no manifest for \(Platform.current.os)/\(Platform.current.architecture)")
                }
                // A multi-platform index may come with only some platforms' blobs.
                let present = here.filter { archive.has(ArchiveFiles.blobPath($0.digest)) }
                guard !present.isEmpty || here.isEmpty else {
                    throw ImageError.invalid("the archive has no blobs for the manifests of index \(d.digest)")
                }
                for m in present { try visit(m, names: names, depth: depth + 1) }
            } else if MediaType.isManifest(d.mediaType) {
                let m = try JSON.decode(ImageManifest.self, from: try archive.read(descriptor: d), what: "manifest \(d.digest)")
                out.append(FoundManifest(descriptor: Descriptor(mediaType: d.mediaType, digest: d.digest, size: d.size),
                                         manifest: m, names: names))
            }
        }
        for d in index.manifests {
            var names: [String] = []
            if let n = d.annotations?[AnnotationKey.containerdImageName] {
                names.append(n)
            } else if let n = d.annotations?[AnnotationKey.refName], n.contains(":") || n.contains("/") {
                // A bare tag ("latest") names no repository; a full reference does.
                names.append(n)
            }
            try visit(d, names: names, depth: 0)
        }
        return out
    }

    private func loadOCILayout(_ archive: ArchiveFiles) throws -> [Pending] {
        var byDigest: [Digest: Pending] = [:]
        var order: [Digest] = []
        for found in try ociManifests(archive) {
            let m = found.manifest
            guard MediaType.isConfig(m.config.mediaType) else {
                throw ImageError.invalid("manifest \(found.descriptor.digest): config media type \(m.config.mediaType) is not an image config")
            }
            let configBytes = try archive.read(descriptor: m.config)
            let imageConfig = try JSON.decode(ImageConfig.self, from: configBytes, what: "image config \(m.config.digest)")
            guard imageConfig.rootfs.diffIDs.count == m.layers.count else {
                throw ImageError.invalid("manifest \(found.descriptor.digest): \(m.layers.count) layers but \(imageConfig.rootfs.diffIDs.count) DiffIDs")
            }
            for (layer, diffID) in zip(m.layers, imageConfig.rootfs.diffIDs) {
                let blob = try archive.blob(descriptor: layer)
                _ = try verifyLayer(blob, diffID: diffID, what: "layer \(layer.digest)")
            }
            let tags = try found.names.map { try Reference(parsing: $0).withDefaultTag() }
            if byDigest[found.descriptor.digest] == nil {
                order.append(found.descriptor.digest)
                byDigest[found.descriptor.digest] = Pending(
                    record: record(manifest: found.descriptor, config: m.config, imageConfig: imageConfig, layers: m.layers), tags: [])
            }
            byDigest[found.descriptor.digest]!.tags += tags.filter { $0.digest == nil }
        }
        guard !order.isEmpty else { throw ImageError.invalid("index.json leads to no image manifest") }
        return order.map { byDigest[$0]! }
    }

    // MARK: Save

    /// Writes a docker-archive of the named images to `fd`, in the layout of Docker 25+ (which
    /// is also an OCI image layout): `blobs/sha256/…`, `index.json`, `manifest.json`, `oci-layout`.
    /// A bare repository name saves all its tags; an ID saves the image untagged.
    public func save(_ refsOrIDs: [String], to fd: Int32) throws {
        let r = snapshot
        var chosen: [Digest: [Reference]] = [:]
        var order: [Digest] = []
        func add(_ rec: ImageRecord, _ tag: Reference?) {
            let key = rec.manifest.digest
            if chosen[key] == nil { chosen[key] = []; order.append(key) }
            if let tag, !chosen[key]!.contains(tag) { chosen[key]!.append(tag) }
        }
        for name in refsOrIDs {
            if let ref = try? Reference(parsing: name), ref.tag == nil, ref.digest == nil {
                let all = r.tags.filter { (try? Reference(parsing: $0.key))?.name == ref.name }.sorted { $0.key < $1.key }
                if !all.isEmpty {
                    for (key, digest) in all {
                        guard let rec = r.images[digest.string] else { continue }
                        add(rec, try Reference(parsing: key))
                    }
                    continue
                }
            }
            let (rec, match) = try resolve(name, in: r)
            if case .reference(let ref) = match, ref.tag != nil { add(rec, ref) } else { add(rec, nil) }
        }
        guard !order.isEmpty else { throw ImageError.invalid("nothing to save") }

        let tar = try TarWriter(fd: fd)
        try tar.addDirectory("blobs")
        try tar.addDirectory("blobs/sha256")
        var written = Set<Digest>()
        func blob(_ d: Digest) throws {
            guard written.insert(d).inserted else { return }
            let size = try content.size(of: d)
            let bfd = try content.open(d)
            defer { close(bfd) }
            try tar.addFile(ArchiveFiles.blobPath(d), size: size, from: bfd, mode: 0o444)
        }
        var manifestJSON: [DockerArchiveManifestEntry] = []
        var index: [Descriptor] = []
        // The legacy `repositories` file: name → tag → top layer, which older loaders read.
        var repositories: [String: [String: String]] = [:]
        for key in order {
            let rec = r.images[key.string]!
            let manifest = try JSON.decode(ImageManifest.self, from: try content.read(key), what: "manifest \(key)")
            try blob(manifest.config.digest)
            for l in manifest.layers { try blob(l.digest) }
            try blob(key)
            let tags = chosen[key]!
            manifestJSON.append(DockerArchiveManifestEntry(config: ArchiveFiles.blobPath(manifest.config.digest),
                                                           repoTags: tags.isEmpty ? nil : tags.map(\.familiarString),
                                                           layers: manifest.layers.map { ArchiveFiles.blobPath($0.digest) }))
            if tags.isEmpty { index.append(rec.manifest) }
            if let top = manifest.layers.last {
                for t in tags { repositories[t.familiarName, default: [:]][t.tag ?? Reference.defaultTag] = top.digest.hex }
            }
            for t in tags {
                var d = rec.manifest
                d.annotations = [AnnotationKey.containerdImageName: t.description, AnnotationKey.refName: t.tag ?? ""]
                index.append(d)
            }
        }
        try tar.addFile("index.json", try JSON.encode(ImageIndex(manifests: index)))
        try tar.addFile("manifest.json", try JSON.encode(manifestJSON))
        try tar.addFile("oci-layout", try JSON.encode(ImageLayoutHeader()))
        if !repositories.isEmpty { try tar.addFile("repositories", try JSON.encode(repositories)) }
        try tar.finish()
    }

    public func save(_ refsOrIDs: [String], path: String) throws {
        let temp = path + ".tmp-" + FD.randomSuffix()
        let fd = try FD.open(temp, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        do {
            try save(refsOrIDs, to: fd)
            close(fd)
            guard rename(temp, path) == 0 else { throw ImageError.system("rename \(temp) to \(path)", errno: errno) }
        } catch {
            close(fd)
            unlink(temp)
            throw error
        }
    }
}

/// The regular files of an archive, each streamed into the content store as it is read
/// (so a multi-gigabyte archive never sits in memory), by cleaned path; plus its links.
/// Sparse entries' holes are written as zeros in bounded chunks, and the archive may not
/// expand to more than the content store's disk has free: a 10 KB archive can claim terabytes.
struct ArchiveFiles {
    private var files: [String: Descriptor] = [:]
    private var links: [String: String] = [:]
    private let content: ContentStore

    /// The most a JSON document of an archive (manifest.json, index.json, a manifest, an image
    /// config, repositories) may take in memory; containers/image's iolimits take 4 MiB too.
    static let maxDocumentSize: Int64 = 4 << 20

    init(fd: Int32, content: ContentStore, lease: ContentStore.Lease) throws {
        self.content = content
        let available = try os { () throws(SystemError) in try DiskSpace.available(at: content.root) }
        var expanded: Int64 = 0
        let reader = try TarReader(fd: fd, what: "image archive")
        while let h = try reader.next() {
            let path = try Self.clean(h.path)
            switch h.kind {
            case .directory:
                continue
            case .regular:
                expanded += max(h.size, 0)
                guard expanded <= available else {
                    throw ImageError.system("Error processing tar file: \(h.path) takes the archive's content to "
                        + "\(DiskSpace.describe(expanded)), more than the \(DiskSpace.describe(available)) free under \(content.root)",
                        errno: ENOSPC)
                }
                let w = try content.writer(lease: lease)
                var end: Int64 = 0
                while let (block, offset) = try reader.readBlock() {
                    guard offset >= end, offset + Int64(block.count) <= h.size else {
                        throw ImageError.invalid("archive entry \(h.path): data outside its \(h.size) bytes")
                    }
                    try Self.writeZeros(w, count: offset - end)
                    try w.write(block)
                    end = offset + Int64(block.count)
                }
                try Self.writeZeros(w, count: h.size - end)
                files[path] = try w.commit()
            case .symlink:
                let target = h.linkTarget ?? ""
                guard !target.hasPrefix("/") else { throw ImageError.invalid("archive symlink \(h.path) points outside the archive") }
                let dir = path.split(separator: "/").dropLast().joined(separator: "/")
                links[path] = try Self.clean(dir.isEmpty ? target : dir + "/" + target)
            case .hardlink:
                links[path] = try Self.clean(h.linkTarget ?? "")
            default:
                throw ImageError.invalid("archive entry \(h.path) is not a file or directory")
            }
        }
        _ = try reader.finish()
    }

    /// One zeroed chunk, shared: a hole of any length costs no more memory than this.
    private static let zeros = [UInt8](repeating: 0, count: 1 << 20)

    /// Writes `count` zero bytes (a sparse entry's hole) in chunks.
    private static func writeZeros(_ w: IngestWriter, count: Int64) throws {
        var left = count
        while left > 0 {
            let n = Int(min(left, Int64(zeros.count)))
            try zeros.withUnsafeBytes { try w.write(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            left -= Int64(n)
        }
    }

    static func checkDocumentSize(_ size: Int64, what: String) throws {
        guard size <= maxDocumentSize else {
            throw ImageError.invalid("\(what) is too large (\(size) bytes) for a JSON document: the limit is \(maxDocumentSize) bytes")
        }
    }

    /// A relative path inside the archive; `..` beyond the top and absolute paths are refused.
    static func clean(_ path: String) throws -> String {
        guard !path.hasPrefix("/") else { throw ImageError.invalid("archive path \"\(path)\" is absolute") }
        var parts: [Substring] = []
        for p in path.split(separator: "/") {
            if p == "." { continue }
            if p == ".." {
                guard parts.popLast() != nil else { throw ImageError.invalid("archive path \"\(path)\" escapes the archive") }
                continue
            }
            parts.append(p)
        }
        return parts.joined(separator: "/")
    }

    static func blobPath(_ d: Digest) -> String { "blobs/sha256/" + d.hex }

    func has(_ path: String) -> Bool { (try? lookup(path)) != nil }

    private func lookup(_ path: String) throws -> Descriptor {
        var p = try Self.clean(path)
        for _ in 0..<16 {
            if let d = files[p] { return d }
            guard let next = links[p] else { break }
            p = next
        }
        throw ImageError.invalid("the archive has no file \(path)")
    }

    /// A file by the path a manifest names. A `blobs/sha256/<hex>` or `<hex>.json` name must
    /// match the content's digest.
    func blob(_ path: String, what: String) throws -> Descriptor {
        let d: Descriptor
        do { d = try lookup(path) } catch { throw ImageError.invalid("\(what): the archive has no file \(path)") }
        let cleaned = try Self.clean(path)
        var named: String?
        if cleaned.hasPrefix("blobs/sha256/") { named = String(cleaned.dropFirst(13)) }
        if cleaned.hasSuffix(".json") && !cleaned.contains("/") { named = String(cleaned.dropLast(5)) }
        if let named, let expected = try? Digest(hex: named), expected != d.digest {
            throw ImageError.invalid("\(what) \(path): digest mismatch: expected \(expected), got \(d.digest)")
        }
        return d
    }

    /// The blob a descriptor names, checked against its digest and size.
    func blob(descriptor: Descriptor) throws -> Descriptor {
        let d: Descriptor
        do { d = try lookup(Self.blobPath(descriptor.digest)) } catch {
            throw ImageError.invalid("the archive has no blob \(descriptor.digest)")
        }
        guard d.digest == descriptor.digest else {
            throw ImageError.invalid("blob \(descriptor.digest): digest mismatch: expected \(descriptor.digest), got \(d.digest)")
        }
        guard d.size == descriptor.size else {
            throw ImageError.invalid("blob \(descriptor.digest): size mismatch: expected \(descriptor.size) bytes, got \(d.size)")
        }
        return d
    }

    func read(_ path: String) throws -> [UInt8] {
        let d = try lookup(path)
        try Self.checkDocumentSize(d.size, what: path)
        return try content.read(d.digest)
    }

    func read(descriptor: Descriptor) throws -> [UInt8] {
        let d = try blob(descriptor: descriptor)
        try Self.checkDocumentSize(d.size, what: "blob \(d.digest)")
        return try content.read(d.digest)
    }
}
