import BerthImages
import BerthOCI
import BerthOS
import FoundationEssentials
import Glibc

extension Engine {
    // MARK: Images

    /// Loads a docker-archive or OCI layout tar; returns `busybox:latest` for tagged images and
    /// `sha256:…` for untagged ones, one per image.
    public func loadImages(path: String) throws(EngineError) -> [(tagged: Bool, name: String)] {
        do {
            return try images.load(path: path).flatMap { img -> [(tagged: Bool, name: String)] in
                img.tags.isEmpty ? [(false, img.id.string)] : img.tags.map { (true, $0) }
            }
        } catch {
            throw Self.mapError(error)
        }
    }

    public func imageSummaries() throws(EngineError) -> [ImageSummary] {
        do {
            return try images.list().map {
                ImageSummary(id: $0.id.string, repoTags: $0.repoTags, repoDigests: $0.repoDigests, created: $0.created,
                             size: $0.size, labels: $0.labels)
            }
        } catch {
            throw Self.mapError(error)
        }
    }

    public func imageDetails(_ ref: String) throws(EngineError) -> ImageDetails {
        do {
            let img = try images.image(ref)
            return ImageDetails(id: img.id.string, repoTags: img.repoTags.map(\.familiarString),
                                repoDigests: img.repoDigests.map(\.familiarString), created: img.config.created ?? "",
                                author: img.config.author ?? "", architecture: img.config.architecture,
                                os: img.config.os, size: img.size, config: img.config.config,
                                layers: img.diffIDs.map(\.string))
        } catch {
            throw Self.mapError(error, imageRef: ref)
        }
    }
}

/// A row of `docker images`, as plain values.
public struct ImageSummary: Sendable {
    public var id: String
    public var repoTags: [String]
    public var repoDigests: [String]
    public var created: Int64
    public var size: Int64
    public var labels: [String: String]
}

/// What `docker image inspect` shows.
public struct ImageDetails: Sendable {
    public var id: String
    public var repoTags: [String]
    public var repoDigests: [String]
    public var created: String
    public var author: String
    public var architecture: String
    public var os: String
    public var size: Int64
    /// The image's run configuration (Docker's `Config` keys).
    public var config: ContainerConfig?
    public var layers: [String]
}
