import AsyncHTTPClient
import BerthImages
import BerthOCI
import FoundationEssentials
import Glibc
import NIOCore
import NIOHTTP1

/// Blobs up to this size go up in one PUT; larger ones in PATCH chunks of this size.
let monolithicUploadLimit: Int64 = 16 << 20

extension RegistryClient {
    /// Pushes a local image to `target` (name and tag) as the docker CLI's `docker push` asks:
    /// each blob the registry lacks is mounted from another repository of the same registry
    /// when a pull or push there put it, else uploaded; then the manifest goes up by tag, with
    /// the exact bytes stored so its digest stays.
    public func push(_ image: ImageStore.Image, as target: Reference, store: ImageStore, credentials: RegistryCredentials?,
                     progress: @escaping @Sendable (TransferProgress) -> Void) async throws -> PushedManifest {
        let tag = target.tag ?? Reference.defaultTag
        let manifestBytes = try store.content.read(image.manifest.digest)
        let manifest: ImageManifest
        do { manifest = try JSONDecoder().decode(ImageManifest.self, from: Data(manifestBytes)) } catch {
            throw RegistryError(.invalid, "malformed manifest \(image.manifest.digest): \(error)")
        }
        let sources = mountSources(for: target, store: store)
        let mountScopes = Set(manifest.layers.compactMap { sources[$0.digest] }).sorted().map { "repository:\($0):pull" }
        progress(TransferProgress(status: "The push refers to repository [\(target.name)]"))

        let session = try await pushSession(target, scopes: ["repository:\(target.path):pull,push"] + mountScopes, credentials: credentials)
        let layers = manifest.layers
        for layer in layers { progress(TransferProgress(id: layer.digest.shortHex, status: "Preparing")) }
        for layer in layers.dropFirst(concurrentTransfers) { progress(TransferProgress(id: layer.digest.shortHex, status: "Waiting")) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            func startNext() {
                guard next < layers.count else { return }
                let layer = layers[next]
                next += 1
                group.addTask {
                    try await self.pushBlob(layer, from: sources[layer.digest], session: session, content: store.content, progress: progress)
                }
            }
            for _ in 0..<concurrentTransfers { startNext() }
            while try await group.next() != nil { startNext() }
        }
        try await pushBlob(manifest.config, from: nil, session: session, content: store.content, progress: nil)

        let mediaType = manifest.mediaType ?? image.manifest.mediaType
        let body = ByteBuffer(bytes: manifestBytes)
        let response = try await session.send(.PUT, "/manifests/\(tag)", headers: ["Content-Type": mediaType], body: { .bytes(body) })
        guard response.status == .created || response.status == .ok else { throw await session.failure(response) }
        _ = try? await response.body.collect(upTo: 1 << 20)
        let pushed = PushedManifest(tag: tag, digest: image.manifest.digest.string, size: manifestBytes.count)
        progress(TransferProgress(status: "\(tag): digest: \(pushed.digest) size: \(pushed.size)"))
        progress(TransferProgress(status: "", pushed: pushed))
        return pushed
    }

    /// A session on the first endpoint that answers `/v2/` (mirrors serve pulls only).
    private func pushSession(_ target: Reference, scopes: [String], credentials: RegistryCredentials?) async throws(RegistryError) -> RegistrySession {
        var lastError = RegistryError(.unavailable, "no registry endpoint for \(target.domain)")
        for endpoint in configuration.endpoints(for: target.domain) where !endpoint.isMirror {
            let session = RegistrySession(client: self, endpoint: endpoint, reference: target, scopes: scopes,
                                          credentials: credentials, operation: .push)
            do throws(RegistryError) {
                // Authenticates for the push scopes up front, so uploads carry the token.
                let response = try await session.send(.HEAD, "/blobs/\(Digest.of([UInt8]()))", timeout: .minutes(1))
                if response.status == .unauthorized || response.status == .forbidden { throw await session.failure(response) }
                _ = try? await response.body.collect(upTo: 1 << 20)
                return session
            } catch where error.code == .unavailable && error.message.hasPrefix("transport: ") {
                lastError = RegistryError(.unavailable, String(error.message.dropFirst("transport: ".count)))
            }
        }
        throw lastError
    }

    /// Repositories of the same registry that have each blob, known from the RepoDigests that
    /// pulls and pushes recorded on local images: candidates for a cross-repository mount.
    private func mountSources(for target: Reference, store: ImageStore) -> [Digest: String] {
        var out: [Digest: String] = [:]
        for summary in (try? store.list()) ?? [] {
            let repos = summary.repoDigests.compactMap { try? Reference(parsing: $0) }
                .filter { $0.domain == target.domain && $0.path != target.path }
            guard let repo = repos.first?.path,
                  let bytes = try? store.content.read(summary.manifestDigest),
                  let manifest = try? JSONDecoder().decode(ImageManifest.self, from: Data(bytes)) else { continue }
            for layer in manifest.layers where out[layer.digest] == nil { out[layer.digest] = repo }
        }
        return out
    }

    /// One blob: skipped when the registry has it, mounted from `source` when it can, else
    /// uploaded (one PUT, or PATCH chunks then PUT for large blobs).
    private func pushBlob(_ blob: Descriptor, from source: String?, session: RegistrySession, content: ContentStore,
                          progress: (@Sendable (TransferProgress) -> Void)?) async throws {
        let id = blob.digest.shortHex
        let head = try await session.send(.HEAD, "/blobs/\(blob.digest)", timeout: .minutes(1))
        _ = try? await head.body.collect(upTo: 1 << 20)
        if head.status == .ok {
            progress?(TransferProgress(id: id, status: "Layer already exists"))
            return
        }
        var start: HTTPClientResponse
        if let source {
            start = try await session.send(.POST, "/blobs/uploads/?mount=\(blob.digest)&from=\(source)", timeout: .minutes(1))
            if start.status == .created {
                _ = try? await start.body.collect(upTo: 1 << 20)
                progress?(TransferProgress(id: id, status: "Mounted from \(source)"))
                return
            }
        } else {
            start = try await session.send(.POST, "/blobs/uploads/", timeout: .minutes(1))
        }
        guard start.status == .accepted, var location = start.headers.first(name: "Location") else {
            throw await session.failure(start)
        }
        _ = try? await start.body.collect(upTo: 1 << 20)
        let fd = try content.open(blob.digest)
        defer { close(fd) }
        func chunk(at offset: Int64, count: Int) throws -> ByteBuffer {
            var buffer = ByteBuffer()
            let n = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in
                var done = 0
                while done < count {
                    let r = pread(fd, raw.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                    if r < 0 && errno == EINTR { continue }
                    guard r > 0 else { throw RegistryError(.unavailable, "reading blob \(blob.digest) from the content store failed") }
                    done += r
                }
                return done
            }
            precondition(n == count)
            return buffer
        }
        progress?(TransferProgress(id: id, status: "Pushing", current: 0, total: blob.size))
        var offset: Int64 = 0
        var final: ByteBuffer? = nil
        if blob.size <= monolithicUploadLimit {
            final = try chunk(at: 0, count: Int(blob.size))
        } else {
            while offset < blob.size {
                let count = Int(min(monolithicUploadLimit, blob.size - offset))
                let body = try chunk(at: offset, count: count)
                let response = try await session.send(.PATCH, location, headers: [
                    "Content-Type": "application/octet-stream",
                    "Content-Range": "\(offset)-\(offset + Int64(count) - 1)",
                    "Content-Length": "\(count)",
                ], body: { .bytes(body) })
                guard response.status == .accepted, let next = response.headers.first(name: "Location") else {
                    throw await session.failure(response)
                }
                _ = try? await response.body.collect(upTo: 1 << 20)
                location = next
                offset += Int64(count)
                progress?(TransferProgress(id: id, status: "Pushing", current: offset, total: blob.size))
            }
        }
        let separator = location.contains("?") ? "&" : "?"
        let body = final
        let response = try await session.send(.PUT, location + separator + "digest=" + blob.digest.string, headers: [
            "Content-Type": "application/octet-stream",
        ], body: { .bytes(body ?? ByteBuffer()) })
        guard response.status == .created else { throw await session.failure(response) }
        _ = try? await response.body.collect(upTo: 1 << 20)
        progress?(TransferProgress(id: id, status: "Pushing", current: blob.size, total: blob.size))
        progress?(TransferProgress(id: id, status: "Pushed"))
    }
}
