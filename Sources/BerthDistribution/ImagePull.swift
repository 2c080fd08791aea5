import AsyncHTTPClient
import BerthImages
import BerthOCI
import Dispatch
import FoundationEssentials
import Glibc
import NIOCore
import NIOHTTP1

/// An image a registry has for a reference, resolved before anything is downloaded, so
/// errors (no such repository, no such tag, no manifest for this platform) come before the
/// progress stream starts.
public struct ResolvedImage: Sendable {
    /// The reference asked for, with its tag (`latest` by default) or digest.
    public var reference: Reference
    /// The index or manifest the reference names: what `RepoDigests` records.
    public var top: Descriptor
    /// The platforms the top descriptor offers (one for a plain manifest).
    public var platforms: [Platform]
    /// The image manifest chosen for the platform.
    public var manifestDescriptor: Descriptor
    var manifestBytes: [UInt8]
    var manifest: ImageManifest
    var configBytes: [UInt8]
    var session: RegistrySession
}

/// How a pull ended.
public struct PullResult: Sendable {
    public var imageID: Digest
    public var manifestDigest: Digest
    /// False when the image was already there under that name ("Image is up to date").
    public var downloaded: Bool
}

/// distribution spec "Pulling manifests": every media type an image can be served as.
let manifestAccept = [MediaType.dockerManifest, MediaType.dockerManifestList, MediaType.imageManifest, MediaType.imageIndex]
    .joined(separator: ", ")

/// Layers downloaded at once by one pull (dockerd's max-concurrent-downloads is 3).
let concurrentTransfers = 3

extension RegistryClient {
    /// Finds what `reference` names on its registry (trying mirrors first for Docker Hub) and
    /// picks the manifest for `platform` (this machine's when nil) from an index.
    public func resolve(_ reference: Reference, platform: Platform?,
                        credentials: RegistryCredentials?) async throws(RegistryError) -> ResolvedImage {
        let ref = reference.withDefaultTag()
        let endpoints = configuration.endpoints(for: ref.domain)
        var lastError = RegistryError(.unavailable, "no registry endpoint for \(ref.domain)")
        for endpoint in endpoints {
            let session = RegistrySession(client: self, endpoint: endpoint, reference: ref,
                                          scopes: ["repository:\(ref.path):pull"], credentials: credentials, operation: .pull)
            do throws(RegistryError) {
                return try await resolve(ref, platform: platform, session: session)
            } catch {
                // Transport failures move on to the next endpoint; so does anything a mirror
                // cannot serve, as dockerd falls back from mirrors to the origin.
                let isTransport = error.code == .unavailable && error.message.hasPrefix("transport: ")
                guard isTransport || endpoint.isMirror else { throw error }
                lastError = isTransport ? RegistryError(.unavailable, String(error.message.dropFirst("transport: ".count))) : error
            }
        }
        throw lastError
    }

    private func resolve(_ ref: Reference, platform: Platform?, session: RegistrySession) async throws(RegistryError) -> ResolvedImage {
        let (top, topBytes) = try await fetchManifest(ref.digest?.string ?? ref.tag!, expected: ref.digest, session: session)
        var descriptor = top
        var bytes = topBytes
        var platforms: [Platform] = []
        var depth = 0
        while MediaType.isIndex(descriptor.mediaType) {
            depth += 1
            guard depth <= 2 else { throw RegistryError(.invalid, "index \(top.digest): indexes nested too deep") }
            guard let index = try? JSONDecoder().decode(ImageIndex.self, from: Data(bytes)) else {
                throw RegistryError(.invalid, "malformed index \(descriptor.digest)")
            }
            if depth == 1 { platforms = index.manifests.filter { MediaType.isManifest($0.mediaType) }.compactMap(\.platform) }
            guard let chosen = PlatformSelection.select(from: index, platform: platform) else {
                let want = PlatformSelection.describe(platform ?? Platform.current)
                throw RegistryError(.notFound, "no matching manifest for \(want) in the manifest list entries")
            }
            (descriptor, bytes) = try await fetchManifest(chosen.digest.string, expected: chosen.digest, session: session)
        }
        let manifest: ImageManifest
        do { manifest = try JSONDecoder().decode(ImageManifest.self, from: Data(bytes)) } catch {
            throw RegistryError(.invalid, "malformed manifest \(descriptor.digest): \(error)")
        }
        guard MediaType.isConfig(manifest.config.mediaType) else {
            throw RegistryError(.invalid, "\(ref.familiarString) is not an image: its config has media type \(manifest.config.mediaType)")
        }
        for layer in manifest.layers where !MediaType.isLayer(layer.mediaType) {
            throw RegistryError(.invalid, "unsupported layer media type \(layer.mediaType) for \(layer.digest)")
        }
        guard manifest.config.size <= 8 << 20 else { throw RegistryError(.invalid, "image config \(manifest.config.digest) is too large") }
        let configBytes = try await fetchSmallBlob(manifest.config, session: session)
        guard let config = try? JSONDecoder().decode(ImageConfig.self, from: Data(configBytes)) else {
            throw RegistryError(.invalid, "malformed image config \(manifest.config.digest)")
        }
        guard config.rootfs.diffIDs.count == manifest.layers.count else {
            throw RegistryError(.invalid, "manifest \(descriptor.digest): \(manifest.layers.count) layers but the config lists \(config.rootfs.diffIDs.count) DiffIDs")
        }
        if let platform, platforms.isEmpty, !platform.matches(config.platform) {
            throw RegistryError(.notFound, "image with reference \(ref.familiarString) was found but does not match the specified platform: wanted \(PlatformSelection.describe(platform)), actual: \(PlatformSelection.describe(config.platform))")
        }
        if platforms.isEmpty { platforms = [config.platform] }
        return ResolvedImage(reference: ref, top: top, platforms: platforms, manifestDescriptor: descriptor, manifestBytes: bytes,
                             manifest: manifest, configBytes: configBytes, session: session)
    }

    /// GETs a manifest or index, checking its digest: against `expected` when pulling by
    /// digest, and against `Docker-Content-Digest` when the registry sends one.
    func fetchManifest(_ tagOrDigest: String, expected: Digest?, session: RegistrySession) async throws(RegistryError) -> (Descriptor, [UInt8]) {
        let response = try await session.send(.GET, "/manifests/\(tagOrDigest)", headers: ["Accept": manifestAccept], timeout: .minutes(2))
        guard response.status == .ok else { throw await session.failure(response) }
        let bytes: [UInt8]
        do { bytes = Array(try await response.body.collect(upTo: 4 << 20).readableBytesView) } catch {
            throw RegistryError(.invalid, "manifest \(tagOrDigest) of \(session.reference.familiarName): \(RegistrySession.describe(error))")
        }
        let digest = Digest.of(bytes)
        if let expected, expected != digest {
            throw RegistryError(.invalid, "manifest verification failed for digest \(expected): the content hashes to \(digest)")
        }
        if let header = response.headers.first(name: "Docker-Content-Digest"), let claimed = try? Digest(header), claimed != digest {
            throw RegistryError(.invalid, "manifest verification failed: the registry says \(claimed), the content hashes to \(digest)")
        }
        struct Kind: Decodable {
            var schemaVersion: Int?
            var mediaType: String?
            var manifests: [Descriptor]?
            var config: Descriptor?
        }
        guard let kind = try? JSONDecoder().decode(Kind.self, from: Data(bytes)) else {
            throw RegistryError(.invalid, "manifest \(tagOrDigest) of \(session.reference.familiarName) is not JSON")
        }
        if kind.schemaVersion == 1 {
            throw RegistryError(.invalid, "\(session.reference.familiarString) is a Docker image manifest version 2, schema 1, which is no longer supported")
        }
        let contentType = response.headers.first(name: "Content-Type").map { String($0.split(separator: ";")[0].filter { $0 != " " }) }
        let mediaType = kind.mediaType ?? [contentType].compactMap { $0 }.first { MediaType.isIndex($0) || MediaType.isManifest($0) }
            ?? (kind.manifests != nil ? MediaType.imageIndex : MediaType.imageManifest)
        guard MediaType.isIndex(mediaType) || MediaType.isManifest(mediaType) else {
            throw RegistryError(.invalid, "unsupported manifest media type \(mediaType) for \(session.reference.familiarString)")
        }
        if MediaType.isIndex(mediaType) != (kind.manifests != nil) || MediaType.isManifest(mediaType) != (kind.config != nil) {
            throw RegistryError(.invalid, "manifest \(digest) does not match its media type \(mediaType)")
        }
        return (Descriptor(mediaType: mediaType, digest: digest, size: Int64(bytes.count)), bytes)
    }

    /// A blob small enough to hold in memory (a config), checked against its descriptor.
    func fetchSmallBlob(_ d: Descriptor, session: RegistrySession) async throws(RegistryError) -> [UInt8] {
        let response = try await session.send(.GET, "/blobs/\(d.digest)", timeout: .minutes(2))
        guard response.status == .ok else { throw await session.failure(response) }
        let bytes: [UInt8]
        do { bytes = Array(try await response.body.collect(upTo: Int(d.size) + 1).readableBytesView) } catch {
            throw RegistryError(.invalid, "blob \(d.digest): \(RegistrySession.describe(error))")
        }
        guard Int64(bytes.count) == d.size, Digest.of(bytes) == d.digest else {
            throw RegistryError(.invalid, "blob verification failed for digest \(d.digest)")
        }
        return bytes
    }

    // MARK: Pull

    /// Downloads what `image` needs that `store` lacks (several layers at once, each streamed
    /// into the content store while hashed and unpacked as soon as it is verified) and registers
    /// it under its tag with its RepoDigest. On failure nothing is registered and what was
    /// stored for it is collected.
    public func pull(_ image: ResolvedImage, into store: ImageStore,
                     progress: @escaping @Sendable (TransferProgress) -> Void) async throws -> PullResult {
        let ref = image.reference
        let tagRef = ref.tag.map { ref.tagged($0) }
        let repoDigest = ref.digested(image.top.digest)
        progress(TransferProgress(id: ref.tag ?? ref.digest?.string, status: "Pulling from \(ref.path)"))
        // The store knows images by their manifest digest, which for an index is not the top one.
        let lookup = tagRef ?? ref.digested(image.manifestDescriptor.digest)
        if let existing = try? store.image(lookup.description), existing.manifest.digest == image.manifestDescriptor.digest {
            if !existing.repoDigests.contains(repoDigest) { try store.addRepoDigest(repoDigest, to: existing) }
            progress(TransferProgress(status: "Digest: \(image.top.digest)"))
            progress(TransferProgress(status: "Status: Image is up to date for \(ref.familiarString)"))
            return PullResult(imageID: existing.id, manifestDigest: existing.manifest.digest, downloaded: false)
        }

        let content = store.content
        let lease = content.beginLease()
        defer { content.endLease(lease) }
        do {
            _ = try content.ingest(bytes: image.configBytes, mediaType: image.manifest.config.mediaType,
                                   expected: image.manifest.config.digest, lease: lease)
            let config = try JSONDecoder().decode(ImageConfig.self, from: Data(image.configBytes))
            var pending: [(Descriptor, Digest)] = []
            for (layer, diffID) in zip(image.manifest.layers, config.rootfs.diffIDs) {
                if content.has(layer.digest) && store.snapshots.hasLayer(diffID) {
                    progress(TransferProgress(id: layer.digest.shortHex, status: "Already exists"))
                } else if !pending.contains(where: { $0.0.digest == layer.digest }) {
                    pending.append((layer, diffID))
                    progress(TransferProgress(id: layer.digest.shortHex, status: "Pulling fs layer"))
                }
            }
            for (layer, _) in pending.dropFirst(concurrentTransfers) {
                progress(TransferProgress(id: layer.digest.shortHex, status: "Waiting"))
            }
            let session = image.session
            // Downloads take turns for a slot; unpacking runs beside them, so a layer that
            // arrived is unpacked while the next ones download.
            let slots = TransferSlots(concurrentTransfers)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (layer, diffID) in pending {
                    group.addTask {
                        try await self.fetchLayer(layer, diffID: diffID, session: session, store: store, lease: lease,
                                                  slots: slots, progress: progress)
                    }
                }
                try await group.waitForAll()
            }
            _ = try content.ingest(bytes: image.manifestBytes, mediaType: image.manifestDescriptor.mediaType,
                                   expected: image.manifestDescriptor.digest, lease: lease)
            let manifest = image.manifestDescriptor
            let id = try await blocking { try store.registerPulled(manifest: manifest, tag: tagRef, repoDigest: repoDigest) }
            progress(TransferProgress(status: "Digest: \(image.top.digest)"))
            progress(TransferProgress(status: "Status: Downloaded newer image for \(ref.familiarString)"))
            return PullResult(imageID: id, manifestDigest: manifest.digest, downloaded: true)
        } catch {
            content.endLease(lease)
            _ = try? await blocking { try store.collectGarbage() }
            throw error
        }
    }

    /// One layer: downloaded unless its blob is there (a concurrent pull of the same blob is
    /// waited for rather than repeated), then unpacked unless it is.
    private func fetchLayer(_ layer: Descriptor, diffID: Digest, session: RegistrySession, store: ImageStore,
                            lease: ContentStore.Lease, slots: TransferSlots,
                            progress: @escaping @Sendable (TransferProgress) -> Void) async throws {
        let id = layer.digest.shortHex
        var unpacked = false
        if !store.content.has(layer.digest) {
            // Unpacked as it arrives, unless the layer is there already.
            let stream = store.snapshots.hasLayer(diffID) ? nil : LayerStream(diffID: diffID, snapshots: store.snapshots)
            await slots.acquire()
            let downloaded: Bool
            do {
                downloaded = try await inFlight.run(layer.digest) {
                    try await self.download(layer, session: session, content: store.content, lease: lease, stream: stream,
                                            progress: progress)
                }
            } catch {
                await slots.release()
                await stream?.abandon()
                throw error
            }
            await slots.release()
            if !downloaded {
                guard store.content.has(layer.digest) else { throw RegistryError(.unavailable, "download of \(layer.digest) failed") }
                progress(TransferProgress(id: id, status: "Download complete"))
            }
            if let stream {
                progress(TransferProgress(id: id, status: "Extracting", current: 0, total: layer.size))
                do { unpacked = try await stream.finish() } catch let error as ImageError {
                    throw RegistryError(.invalid, "failed to register layer: \(error.message)")
                }
            }
        } else {
            progress(TransferProgress(id: id, status: "Download complete"))
        }
        if !unpacked {
            progress(TransferProgress(id: id, status: "Extracting", current: 0, total: layer.size))
            do {
                try await blocking {
                    let fd = try store.content.open(layer.digest)
                    defer { close(fd) }
                    try store.snapshots.unpackLayer(diffID, from: fd)
                }
            } catch let error as ImageError {
                throw RegistryError(.invalid, "failed to register layer: \(error.message)")
            }
        }
        progress(TransferProgress(id: id, status: "Extracting", current: layer.size, total: layer.size))
        progress(TransferProgress(id: id, status: "Pull complete"))
    }

    /// Streams a blob into the content store while hashing it, and into `stream` (the
    /// unpacker) when given; a connection lost midway is resumed with a `Range` request from
    /// what was written. The blob becomes visible only once its size and digest match the
    /// descriptor.
    private func download(_ layer: Descriptor, session: RegistrySession, content: ContentStore, lease: ContentStore.Lease,
                          stream: LayerStream?,
                          progress: @escaping @Sendable (TransferProgress) -> Void) async throws {
        var stream = stream
        let id = layer.digest.shortHex
        let verificationFailed = "filesystem layer verification failed for digest \(layer.digest)"
        var writer = try content.writer(lease: lease)
        var failures = 0
        var reported: Int64 = 0
        while true {
            var headers: HTTPHeaders = [:]
            if writer.count > 0 { headers.add(name: "Range", value: "bytes=\(writer.count)-") }
            let response = try await session.send(.GET, "/blobs/\(layer.digest)", headers: headers)
            if response.status == .ok && writer.count > 0 {
                // The registry ignored the range: start over, and unpack from the file after.
                writer.abort()
                writer = try content.writer(lease: lease)
                await stream?.abandon()
                stream = nil
            } else if response.status != .ok && response.status != .partialContent {
                throw await session.failure(response)
            }
            do {
                for try await buffer in response.body {
                    try buffer.withUnsafeReadableBytes { try writer.write($0) }
                    if let stream { await stream.feed(Array(buffer.readableBytesView)) }
                    if writer.count > layer.size {
                        writer.abort()
                        throw RegistryError(.invalid, "\(verificationFailed): more than the \(layer.size) bytes the manifest declares")
                    }
                    if writer.count - reported >= 512 << 10 || writer.count == layer.size {
                        reported = writer.count
                        progress(TransferProgress(id: id, status: "Downloading", current: writer.count, total: layer.size))
                    }
                }
                break
            } catch let error as RegistryError {
                throw error
            } catch let error as ImageError {
                throw error
            } catch {
                failures += 1
                guard failures < 3 else {
                    writer.abort()
                    throw RegistryError(.unavailable, "downloading \(layer.digest): \(RegistrySession.describe(error))")
                }
            }
        }
        progress(TransferProgress(id: id, status: "Verifying Checksum"))
        do {
            _ = try writer.commit(mediaType: layer.mediaType, expected: layer.digest, size: layer.size)
        } catch let error as ImageError {
            throw RegistryError(.invalid, "\(verificationFailed): \(error.message)")
        }
        progress(TransferProgress(id: id, status: "Download complete"))
    }
}

/// A counting semaphore for transfers running at once.
actor TransferSlots {
    private var free: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(_ count: Int) { free = count }

    func acquire() async {
        if free > 0 {
            free -= 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    /// Hands the slot to the longest waiter, if any.
    func release() {
        if waiting.isEmpty { free += 1 } else { waiting.removeFirst().resume() }
    }
}

/// Runs blocking work (disk I/O, unpacking) on a Dispatch thread, off the cooperative pool.
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
    }
}
