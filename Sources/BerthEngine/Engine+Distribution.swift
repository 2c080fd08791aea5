import BerthDistribution
import BerthImages
import BerthOCI

/// Credentials a registry refused or asked for: the API answers 401 (dockerd's
/// `errdefs.Unauthorized`), which `EngineError` has no code for.
public struct RegistryAuthenticationError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// What `GET /distribution/{name}/json` shows: the descriptor a reference names on its
/// registry and the platforms it offers.
public struct DistributionInspection: Sendable {
    public struct PlatformEntry: Sendable {
        public var os: String
        public var architecture: String
        public var variant: String?
    }

    public var mediaType: String
    public var digest: String
    public var size: Int64
    public var platforms: [PlatformEntry]
}

extension Engine {
    // MARK: Distribution

    /// `POST /images/create?fromImage=&tag=&platform=`: resolves the image on its registry
    /// (errors come out here, before any progress), then pulls it while the returned stream
    /// reports progress; the stream ends with the pull, or throws its error.
    /// `auth` is the `X-Registry-Auth` header as the docker CLI sends it.
    public nonisolated func pullImage(_ fromImage: String, tag: String, platform: String,
                                      auth: String?) async throws -> AsyncThrowingStream<TransferProgress, any Error> {
        let reference = try Self.distributionCall { () throws -> Reference in
            var input = fromImage
            if !tag.isEmpty { input += (tag.hasPrefix("sha256:") ? "@" : ":") + tag }
            return try Reference(parsing: input).withDefaultTag()
        }
        let resolved = try await Self.distributionCall {
            try await registry.resolve(reference, platform: try PlatformSelection.parse(platform),
                                       credentials: try RegistryCredentials.decodeHeader(auth))
        }
        let (stream, continuation) = AsyncThrowingStream<TransferProgress, any Error>.makeStream()
        let task = Task {
            do {
                _ = try await registry.pull(resolved, into: images) { continuation.yield($0) }
                await self.publish("image", "pull", id: reference.familiarString, attributes: ["name": reference.familiarString])
                continuation.finish()
            } catch {
                continuation.finish(throwing: Self.distributionError(error))
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// `POST /images/{name}/push?tag=`: the local image `name:tag` (tag `latest` by default)
    /// pushed to the registry its name points at, progress streamed as for a pull.
    /// `POST /images/{name}/push`. With no tag in `name` or `tag`, every local tag of the
    /// repository is pushed, one after the other (`docker push --all-tags`), as dockerd does.
    public nonisolated func pushImage(_ name: String, tag: String, auth: String?) async throws -> AsyncThrowingStream<TransferProgress, any Error> {
        let ref = try Self.distributionCall { () throws -> Reference in
            let ref = try Reference(parsing: name)
            guard ref.digest == nil else { throw ImageError(.invalidArgument, "cannot push a digest reference") }
            return tag.isEmpty ? ref : ref.tagged(tag)
        }
        var targets: [(Reference, ImageStore.Image)] = []
        if ref.tag != nil {
            do { targets = [(ref, try images.image(ref.description))] } catch {
                throw EngineError(.notFound, "An image does not exist locally with the tag: \(ref.familiarName)")
            }
        } else {
            let tagged = ((try? images.list()) ?? []).flatMap(\.repoTags).compactMap { try? Reference(parsing: $0) }
                .filter { $0.name == ref.name && $0.tag != nil }
            for target in Set(tagged).sorted(by: { $0.tag! < $1.tag! }) {
                if let image = try? images.image(target.description) { targets.append((target, image)) }
            }
            guard !targets.isEmpty else {
                throw EngineError(.notFound, "An image does not exist locally with the tag: \(ref.familiarName)")
            }
        }
        let credentials = try Self.distributionCall { try RegistryCredentials.decodeHeader(auth) }
        let (stream, continuation) = AsyncThrowingStream<TransferProgress, any Error>.makeStream()
        let task = Task {
            do {
                for (target, image) in targets {
                    _ = try await registry.push(image, as: target, store: images, credentials: credentials) { continuation.yield($0) }
                    // The registry now knows the image by digest: a later push elsewhere can mount from it.
                    try? images.addRepoDigest(target, to: image)
                    await self.publish("image", "push", id: target.familiarString, attributes: ["name": target.familiarString])
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: Self.distributionError(error))
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// `POST /auth`: checks the credentials against their registry; returns the identity token
    /// its token service granted, if any.
    public nonisolated func login(username: String, password: String, serverAddress: String, identityToken: String) async throws -> String? {
        let credentials = RegistryCredentials(username: username, password: password, serverAddress: serverAddress,
                                              identityToken: identityToken)
        do { return try await registry.login(credentials) } catch where error.code == .unauthorized {
            throw RegistryAuthenticationError(message: error.message)
        } catch {
            throw Self.distributionError(error)
        }
    }

    /// `GET /images/search?term=&limit=`: the registry the term names (Docker Hub by default);
    /// the filters (`is-official`, `is-automated`, `stars`) apply to its answer.
    public nonisolated func searchImages(_ term: String, limit: Int, isOfficial: Bool?, isAutomated: Bool?,
                                         minimumStars: Int, auth: String?) async throws -> [SearchResult] {
        let results = try await Self.distributionCall {
            try await registry.search(term, limit: limit, credentials: try RegistryCredentials.decodeHeader(auth))
        }
        return Array(results.filter { r in
            (isOfficial.map { r.isOfficial == $0 } ?? true) && (isAutomated.map { r.isAutomated == $0 } ?? true)
                && r.starCount >= minimumStars
        }.prefix(limit))
    }

    /// `GET /distribution/{name}/json`.
    public nonisolated func inspectDistribution(_ name: String, auth: String?) async throws -> DistributionInspection {
        let resolved = try await Self.distributionCall {
            try await registry.resolve(try Reference(parsing: name), platform: nil, credentials: try RegistryCredentials.decodeHeader(auth))
        }
        return DistributionInspection(
            mediaType: resolved.top.mediaType, digest: resolved.top.digest.string, size: resolved.top.size,
            platforms: resolved.platforms.map { .init(os: $0.os, architecture: $0.architecture, variant: $0.variant) })
    }

    private static func distributionCall<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch { throw distributionError(error) }
    }

    private static func distributionCall<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch { throw distributionError(error) }
    }

    /// Registry errors as dockerd's statuses: 404, 400, 500. Refused credentials are a 500 here
    /// as in dockerd: a 401 would make the docker CLI prompt for a login mid-pull.
    static func distributionError(_ error: any Error) -> EngineError {
        guard let e = error as? RegistryError else { return mapError(error) }
        switch e.code {
        case .notFound: return EngineError(.notFound, e.message)
        case .unauthorized: return EngineError(.system, e.message)
        case .invalid: return EngineError(.invalidArgument, e.message)
        case .unavailable: return EngineError(.system, e.message)
        }
    }
}
