import BerthOCI
import BerthOS
import FoundationEssentials
import Glibc
import Synchronization

/// BerthImages: the local image store of the daemon.
///
/// It owns, under one root directory:
///
///     content/              OCI image layout: every manifest, config and layer blob (ContentStore)
///     repositories.json     tags → manifest digests and the image records (written atomically)
///     layers/ containers/   unpacked layers and per-container overlay directories (Snapshotter)
///
/// It knows nothing of containers beyond the IDs and "in use" sets its callers hand it, and
/// nothing of networks or HTTP; it must not import the engine or the API. Every method blocks
/// on disk I/O: call it from a thread that may block, not from an event loop.
/// Errors are always `ImageError`.
public final class ImageStore: Sendable {
    public let root: String
    public let content: ContentStore
    public let snapshots: Snapshotter
    let state: Mutex<Repositories>
    private var repositoriesPath: String { root + "/repositories.json" }

    public init(root: String) throws {
        let root = FileSystem.absolute(root)
        self.root = root
        try os { () throws(SystemError) in try FileSystem.makeDirectories(root, mode: 0o700) }
        content = try ContentStore(root: root + "/content")
        snapshots = try Snapshotter(root: root)
        let path = root + "/repositories.json"
        if FileSystem.exists(path) {
            let bytes = try os { () throws(SystemError) in try FileSystem.readBytes(path) }
            state = Mutex(try JSON.decode(Repositories.self, from: bytes, what: path))
        } else {
            state = Mutex(Repositories())
        }
    }

    // MARK: Persistent state

    /// What repositories.json holds.
    struct Repositories: Codable, Sendable {
        var version = 1
        /// Image records by manifest digest.
        var images: [String: ImageRecord] = [:]
        /// Fully qualified `name:tag` → manifest digest.
        var tags: [String: Digest] = [:]

        func tags(of manifest: Digest) -> [Reference] {
            tags.filter { $0.value == manifest }.keys.sorted().compactMap { try? Reference(parsing: $0) }
        }
    }

    /// One image as stored: its manifest and what listing needs without reading blobs.
    public struct ImageRecord: Codable, Sendable, Hashable {
        /// The config digest, which Docker shows as the image ID.
        public var id: Digest
        public var manifest: Descriptor
        public var diffIDs: [Digest]
        public var created: String?
        /// Sum of the layer blobs' sizes.
        public var size: Int64
        /// `name@sha256:…` references known from a registry.
        public var repoDigests: [String]
        /// When a tag last moved onto this image (RFC 3339), Docker's `Metadata.LastTagTime`.
        public var lastTagTime: String?
    }

    /// Applies `change` to a copy of the state, writes it durably, then publishes it; a failed
    /// write leaves both the file and the memory as they were.
    func commit<T: Sendable>(_ change: (inout Repositories) throws -> T) throws -> T {
        try state.withLock { (current: inout Repositories) throws -> T in
            var next = current
            let result = try change(&next)
            let bytes = try JSON.encode(next)
            try os { () throws(SystemError) in try FileSystem.writeAtomically(repositoriesPath, bytes, durable: true) }
            current = next
            // The layout's index.json mirrors the tags, so tools that read OCI layouts see them.
            try? content.writeIndex(Self.layoutIndex(next))
            return result
        }
    }

    private static func layoutIndex(_ r: Repositories) -> ImageIndex {
        var manifests: [Descriptor] = []
        for record in r.images.values.sorted(by: { $0.manifest.digest < $1.manifest.digest }) {
            let refs = r.tags(of: record.manifest.digest)
            if refs.isEmpty { manifests.append(record.manifest) }
            for ref in refs {
                var d = record.manifest
                d.annotations = [AnnotationKey.containerdImageName: ref.description, AnnotationKey.refName: ref.tag ?? ""]
                manifests.append(d)
            }
        }
        return ImageIndex(mediaType: MediaType.imageIndex, manifests: manifests)
    }

    var snapshot: Repositories { state.withLock { $0 } }

    // MARK: Looking up

    /// An image with its decoded config and the references that name it.
    public struct Image: Sendable, Hashable {
        public var id: Digest
        public var manifest: Descriptor
        public var config: ImageConfig
        public var repoTags: [Reference]
        public var repoDigests: [Reference]
        public var size: Int64
        public var lastTagTime: String?
        /// The Docker fields of the config that the OCI spec lacks.
        public var comment: String
        public var dockerVersion: String
        public var diffIDs: [Digest] { config.rootfs.diffIDs }
        /// Unix seconds from the config's `created`, nil when absent or unreadable.
        public var created: Int64? { config.created.flatMap(Timestamp.unixSeconds) }
    }

    enum Match { case reference(Reference), id }

    /// Resolves as Docker's daemon does: a full ID (`sha256:<hex>` or 64 hex digits); else a
    /// reference (`busybox` means `busybox:latest`; `name@sha256:…` a manifest digest); else an
    /// unambiguous prefix of an ID, with or without `sha256:`.
    func resolve(_ input: String, in r: Repositories) throws -> (record: ImageRecord, match: Match) {
        let notFound = ImageError.notFound("No such image: \(input)")
        if let d = try? Digest(input) {
            if let rec = r.images.values.sorted(by: { $0.manifest.digest < $1.manifest.digest }).first(where: { $0.id == d }) {
                return (rec, .id)
            }
            throw notFound
        }
        if Reference.isFullHexID(input) {
            if let rec = r.images.values.first(where: { $0.id.hex == input }) { return (rec, .id) }
            throw notFound
        }
        let parsed: Reference
        do { parsed = try Reference(parsing: input) } catch {
            if let rec = try searchID(input, in: r) { return (rec, .id) }
            throw error
        }
        let ref = parsed.withDefaultTag()
        if let digest = ref.digest {
            if let rec = r.images[digest.string] { return (rec, .reference(ref)) }
            // A multi-platform image is known by its platform manifest; the index digest it was
            // pulled by is one of its repo digests.
            let key = ref.name + "@" + digest.string
            if let rec = r.images.values.sorted(by: { $0.manifest.digest < $1.manifest.digest })
                .first(where: { $0.repoDigests.contains(key) }) {
                return (rec, .reference(ref))
            }
        } else if let m = r.tags[ref.description], let rec = r.images[m.string] {
            return (rec, .reference(ref))
        }
        if let rec = try searchID(input, in: r) { return (rec, .id) }
        throw notFound
    }

    private func searchID(_ input: String, in r: Repositories) throws -> ImageRecord? {
        let hex = input.hasPrefix("sha256:") ? String(input.dropFirst(7)) : input
        guard Reference.isLowerHex(hex) else { return nil }
        let matches = r.images.values.filter { $0.id.hex.hasPrefix(hex) }
        let ids = Set(matches.map(\.id))
        if ids.count > 1 { throw ImageError.notFound("No such image: \(input) (the ID prefix matches \(ids.count) images)") }
        return matches.min { $0.manifest.digest < $1.manifest.digest }
    }

    /// The image a reference, ID or ID prefix names.
    public func image(_ refOrID: String) throws -> Image {
        let r = snapshot
        let (rec, _) = try resolve(refOrID, in: r)
        return try image(rec, r)
    }

    func image(_ rec: ImageRecord, _ r: Repositories) throws -> Image {
        let bytes = try content.read(rec.id)
        let config = try JSON.decode(ImageConfig.self, from: bytes, what: "image config \(rec.id)")
        let extras = (try? JSON.decode(DockerConfigFields.self, from: bytes, what: "")) ?? DockerConfigFields()
        return Image(id: rec.id, manifest: rec.manifest, config: config, repoTags: r.tags(of: rec.manifest.digest),
                     repoDigests: rec.repoDigests.compactMap { try? Reference(parsing: $0) }, size: rec.size,
                     lastTagTime: rec.lastTagTime, comment: extras.comment ?? "", dockerVersion: extras.dockerVersion ?? "")
    }

    /// Top-level keys Docker writes into image configs besides the OCI ones.
    private struct DockerConfigFields: Decodable {
        var comment: String?
        var dockerVersion: String?
        enum CodingKeys: String, CodingKey { case comment, dockerVersion = "docker_version" }
    }

    /// The manifest of an image.
    public func manifest(of image: Image) throws -> ImageManifest {
        try JSON.decode(ImageManifest.self, from: try content.read(image.manifest.digest), what: "manifest \(image.manifest.digest)")
    }

    // MARK: Tags

    /// Points `target` (`name[:tag]`, default tag `latest`) at the image `source` names,
    /// moving it from any image it named before. Returns the image's ID and the tag in its
    /// familiar form.
    @discardableResult
    public func tag(_ source: String, as target: String) throws -> (id: Digest, tag: String) {
        let ref = try Reference(parsing: target).withDefaultTag()
        guard ref.digest == nil else { throw ImageError.invalid("refusing to create a tag with a digest reference") }
        let now = Timestamp.now()
        let id = try commit { r in
            let (rec, _) = try resolve(source, in: r)
            r.tags[ref.description] = rec.manifest.digest
            r.images[rec.manifest.digest.string]?.lastTagTime = now
            return rec.id
        }
        return (id, ref.familiarString)
    }

    /// Removes one tag (or repo digest); the image stays, untagged if it was the last.
    public func untag(_ reference: String) throws {
        let ref = try Reference(parsing: reference).withDefaultTag()
        try commit { r in
            if ref.tag == nil, let d = ref.digest {
                guard var rec = r.images[d.string], let i = rec.repoDigests.firstIndex(of: ref.description) else {
                    throw ImageError.notFound("No such image: \(reference)")
                }
                rec.repoDigests.remove(at: i)
                r.images[d.string] = rec
            } else if r.tags.removeValue(forKey: ref.tagged(ref.tag!).description) == nil {
                throw ImageError.notFound("No such image: \(reference)")
            }
        }
    }

    /// Records that a registry knows this image as `name@digest` (after a pull or push).
    /// Records `reference` by digest: its own digest when it has one (the index a
    /// multi-platform image was pulled by), else the image's manifest digest.
    public func addRepoDigest(_ reference: Reference, to image: Image) throws {
        let key = reference.digested(reference.digest ?? image.manifest.digest).description
        try commit { r in
            guard var rec = r.images[image.manifest.digest.string] else {
                throw ImageError.notFound("No such image: \(image.id)")
            }
            if !rec.repoDigests.contains(key) { rec.repoDigests.append(key) }
            r.images[image.manifest.digest.string] = rec
        }
    }

    // MARK: Garbage

    /// What a garbage collection removed.
    public struct Garbage: Sendable {
        public var blobs: ContentStore.CollectionResult
        /// DiffIDs of the unpacked layers removed.
        public var layers: [Digest]
    }

    /// Removes blobs no image references and unpacked layers no image or container uses.
    @discardableResult
    public func collectGarbage() throws -> Garbage {
        let r = snapshot
        let blobs = try content.collectGarbage(roots: Set(r.images.values.map(\.manifest.digest)))
        let layers = try snapshots.prune(keeping: Set(r.images.values.flatMap(\.diffIDs)))
        return Garbage(blobs: blobs, layers: layers)
    }

    // MARK: Containers

    /// Unpacks the image's layers that are not unpacked yet (checking each DiffID) and
    /// prepares the container's overlay directories; returns the mount for the caller to do.
    public func prepareRootfs(container id: String, image refOrID: String, target: String? = nil) throws -> OverlayMount {
        let img = try image(refOrID)
        let manifest = try manifest(of: img)
        guard manifest.layers.count == img.diffIDs.count else {
            throw ImageError.state("image \(img.id.shortHex): \(manifest.layers.count) layers but \(img.diffIDs.count) DiffIDs")
        }
        try unpack(layers: manifest.layers, diffIDs: img.diffIDs)
        return try snapshots.prepare(container: id, layers: img.diffIDs, target: target)
    }

    /// Unpacks the stored layer blobs not unpacked yet, checking each DiffID. Loads and imports
    /// do it before registering an image, so a layer that cannot be applied (an entry that
    /// climbs out of it, a hardlink to outside) refuses the image instead of a later `run`.
    func unpack(layers: [Descriptor], diffIDs: [Digest]) throws {
        for (layer, diffID) in zip(layers, diffIDs) where !snapshots.hasLayer(diffID) {
            let fd = try content.open(layer.digest)
            defer { close(fd) }
            try snapshots.unpackLayer(diffID, from: fd)
        }
    }

    // MARK: Registering

    /// A verified image waiting to be registered with its tags.
    struct Pending {
        var record: ImageRecord
        var tags: [Reference]
    }

    /// Registers verified images and moves their tags in one durable write.
    func register(_ images: [Pending]) throws {
        try commit { r in
            for p in images {
                let key = p.record.manifest.digest.string
                var rec = p.record
                if let old = r.images[key] {
                    rec.repoDigests = Array(Set(old.repoDigests + rec.repoDigests)).sorted()
                    rec.lastTagTime = old.lastTagTime
                }
                if !p.tags.isEmpty { rec.lastTagTime = Timestamp.now() }
                r.images[key] = rec
                for t in p.tags { r.tags[t.withDefaultTag().description] = p.record.manifest.digest }
            }
        }
    }

    /// The record for a manifest whose config and layers are already verified and stored.
    func record(manifest: Descriptor, config: Descriptor, imageConfig: ImageConfig, layers: [Descriptor]) -> ImageRecord {
        ImageRecord(id: config.digest, manifest: Descriptor(mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size),
                    diffIDs: imageConfig.rootfs.diffIDs, created: imageConfig.created,
                    size: layers.reduce(0) { $0 + $1.size }, repoDigests: [])
    }
}
