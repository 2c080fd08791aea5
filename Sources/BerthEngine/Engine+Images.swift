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
        let loaded: [ImageStore.LoadedImage]
        do { loaded = try images.load(path: path) } catch { throw Self.mapError(error) }
        var out: [(tagged: Bool, name: String)] = []
        for img in loaded {
            for name in img.tags.isEmpty ? [img.id.string] : img.tags {
                publish("image", "load", id: img.id.string, attributes: ["name": name])
                out.append((!img.tags.isEmpty, name))
            }
        }
        return out
    }

    /// dockerd's `acceptedImageFilterTags`.
    public static let imageFilterKeys: Set<String> = ["dangling", "label", "before", "since", "reference", "until"]
    /// The filters `POST /images/prune` takes.
    public static let imagePruneFilterKeys: Set<String> = ["dangling", "label", "label!", "until"]

    /// `GET /images/json`: images that pass `filters` (keys from `imageFilterKeys`), newest
    /// first; with `sharedSize`, the size each shares with other images.
    public func imageSummaries(filters: [String: [String]] = [:], sharedSize: Bool = false) throws(EngineError) -> [ImageSummary] {
        let filter = try Self.imageFilter(filters)
        do {
            let shared = sharedSize ? Dictionary(uniqueKeysWithValues: try images.usage().map { ($0.id, $0.sharedSize) }) : [:]
            return try images.list(filter).map {
                ImageSummary(id: $0.id.string, repoTags: $0.repoTags, repoDigests: $0.repoDigests, created: $0.created,
                             size: $0.size, sharedSize: shared[$0.id] ?? -1, labels: $0.labels)
            }
        } catch {
            throw Self.mapError(error)
        }
    }

    public func imageDetails(_ ref: String) throws(EngineError) -> ImageDetails {
        do {
            let img = try images.image(ref)
            // GraphDriver as overlay2 shows it: the top layer, and the ones below it.
            let dirs = img.diffIDs.reversed().map(images.snapshots.layerDirectory)
            var driverData: [String: String] = [:]
            if let top = dirs.first { driverData["UpperDir"] = top }
            if dirs.count > 1 { driverData["LowerDir"] = dirs.dropFirst().joined(separator: ":") }
            return ImageDetails(id: img.id.string, repoTags: img.repoTags.map(\.familiarString),
                                repoDigests: img.repoDigests.map(\.familiarString), comment: img.comment,
                                created: img.config.created ?? "", dockerVersion: img.dockerVersion,
                                author: img.config.author ?? "", architecture: img.config.architecture,
                                variant: img.config.variant, os: img.config.os, osVersion: img.config.osVersion,
                                size: img.size, config: img.config.config, graphDriverData: driverData,
                                layers: img.diffIDs.map(\.string), lastTagTime: img.lastTagTime)
        } catch {
            throw Self.mapError(error, imageRef: ref)
        }
    }

    public func imageHistory(_ ref: String) throws(EngineError) -> [ImageHistoryItem] {
        do {
            return try images.history(ref).map {
                ImageHistoryItem(id: $0.id, created: $0.created, createdBy: $0.createdBy, tags: $0.tags, size: $0.size,
                                 comment: $0.comment)
            }
        } catch {
            throw Self.mapError(error, imageRef: ref)
        }
    }

    /// `POST /images/{name}/tag`: `repo` (which may carry the tag) and `tag` (default `latest`).
    public func tagImage(_ source: String, repo: String, tag: String) throws(EngineError) {
        guard !repo.isEmpty else { throw EngineError(.invalidArgument, "repository name must have at least one component") }
        let target: String
        do {
            let ref = try Reference(parsing: repo)
            if ref.digest != nil { throw EngineError(.invalidArgument, "cannot tag with a digest reference: \(repo)") }
            if ref.path == "library/sha256" {
                throw EngineError(.invalidArgument, "refusing to create an ambiguous tag using digest algorithm as name")
            }
            target = tag.isEmpty ? repo : (ref.tag == nil ? repo : ref.name) + ":" + tag
            _ = try images.image(source)
        } catch let error as EngineError {
            throw error
        } catch {
            throw Self.mapError(error, imageRef: source)
        }
        let result: (id: Digest, tag: String)
        do { result = try images.tag(source, as: target) } catch { throw Self.mapError(error) }
        publish("image", "tag", id: result.id.string, attributes: ["name": result.tag])
    }

    /// One line of `DELETE /images/{name}` and of prune's `ImagesDeleted`.
    public enum ImageDeleteItem: Sendable, Equatable {
        case untagged(String)
        case deleted(String)
    }

    /// `docker rmi`, with dockerd's rules about tags and containers (see `ImageStore.delete`).
    public func removeImage(_ ref: String, force: Bool) throws(EngineError) -> [ImageDeleteItem] {
        let removal: ImageStore.Removal
        do { removal = try images.delete(ref, force: force, users: imageUsers()) } catch {
            throw Self.mapError(error, imageRef: ref)
        }
        return publishRemoval(removal)
    }

    /// `docker image prune`: deletes what `filters` (keys from `imagePruneFilterKeys`) select,
    /// by default the untagged images no container uses.
    public func pruneImages(filters: [String: [String]]) throws(EngineError) -> (deleted: [ImageDeleteItem], reclaimed: Int64) {
        var values = filters
        var pruneFilter = ImageFilter()
        if let until = values.removeValue(forKey: "until") {
            guard until.count <= 1 else { throw EngineError(.invalidArgument, "more than one until filter specified") }
            if let text = until.first {
                let nano = try DockerTime.nanoseconds(text, now: Int64(time(nil)) * 1_000_000_000)
                pruneFilter.until = nano / 1_000_000_000
            }
        }
        pruneFilter.excludedLabels = values.removeValue(forKey: "label!") ?? []
        let listFilter = try Self.imageFilter(values)
        pruneFilter.dangling = listFilter.dangling
        pruneFilter.labels = listFilter.labels
        let removals: [ImageStore.Removal]
        do { removals = try images.prune(pruneFilter, users: imageUsers()) } catch { throw Self.mapError(error) }
        let deleted = removals.flatMap(publishRemoval)
        let reclaimed = removals.reduce(0) { $0 + $1.reclaimedBytes }
        publish("image", "prune", id: "", attributes: ["reclaimed": String(reclaimed)])
        return (deleted, reclaimed)
    }

    /// Writes a docker-archive of the named images (`docker save`) to `path`. Reads only, so it
    /// runs off the actor and a big save does not hold up other calls.
    public nonisolated func saveImages(_ names: [String], to path: String) throws(EngineError) {
        guard !names.isEmpty else { throw EngineError(.invalidArgument, "no images specified") }
        for name in names {
            do { _ = try images.image(name) } catch { throw Self.mapError(error, imageRef: name) }
        }
        do { try images.save(names, path: path) } catch { throw Self.mapError(error) }
    }

    /// `docker import`: the tarball at `path` becomes a one-layer image tagged `repo[:tag]`
    /// when given, with `changes` applied to its config. Returns the image ID.
    public func importImage(path: String, repo: String, tag: String, changes: [String], message: String) throws(EngineError) -> String {
        var reference: String?
        if !repo.isEmpty {
            do {
                let ref = try Reference(parsing: repo)
                if ref.digest != nil { throw EngineError(.invalidArgument, "cannot import digest reference") }
                reference = tag.isEmpty ? repo : (ref.tag == nil ? repo : ref.name) + ":" + tag
            } catch let error as EngineError {
                throw error
            } catch {
                throw Self.mapError(error)
            }
        }
        let img: ImageStore.Image
        do {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw EngineError(.system, SystemError("open \(path)", errno: errno).message) }
            defer { close(fd) }
            img = try images.importImage(from: fd, reference: reference, changes: changes, message: message)
        } catch {
            throw Self.mapError(error)
        }
        publish("image", "import", id: img.id.string, attributes: ["name": img.id.string])
        return img.id.string
    }

    /// Per image: its size, what it shares with other images and how many containers use it
    /// (for `GET /system/df`).
    public func imageUsage() throws(EngineError) -> [ImageUsage] {
        let users = imageUsers()
        do {
            return try images.usage().map { u in
                ImageUsage(id: u.id.string, size: u.size, sharedSize: u.sharedSize,
                           containers: users.filter { $0.imageID == u.id }.count)
            }
        } catch {
            throw Self.mapError(error)
        }
    }

    // MARK: Helpers

    /// The containers as image users; paused and restarting ones count as running, as in dockerd.
    private func imageUsers() -> [ImageUser] {
        containers.values.compactMap { rec in
            guard let id = try? Digest(rec.imageID) else { return nil }
            let running = rec.status == .running || rec.status == .paused || rec.status == .restarting
            return ImageUser(imageID: id, containerID: rec.id, running: running)
        }
    }

    /// dockerd's `untag` and `delete` events (both name the image by its ID), and the lines of the answer.
    private func publishRemoval(_ removal: ImageStore.Removal) -> [ImageDeleteItem] {
        let id = removal.imageID.string
        return removal.items.map { item in
            switch item {
            case .untagged(let name):
                publish("image", "untag", id: id, attributes: ["name": id])
                return .untagged(name)
            case .deleted(let digest):
                if digest == removal.imageID { publish("image", "delete", id: id, attributes: ["name": id]) }
                return .deleted(digest.string)
            }
        }
    }

    /// The list filters as an `ImageFilter`, with dockerd's errors for values it refuses.
    static func imageFilter(_ values: [String: [String]]) throws(EngineError) -> ImageFilter {
        var f = ImageFilter()
        if let dangling = values["dangling"], !dangling.isEmpty {
            let wanted = Set(dangling.map { $0.lowercased() })
            guard wanted.count == 1, let v = wanted.first, v == "true" || v == "false" || v == "1" || v == "0" else {
                throw EngineError(.invalidArgument, "invalid filter 'dangling=\(dangling.joined(separator: ","))'")
            }
            f.dangling = v == "true" || v == "1"
        }
        f.labels = values["label"] ?? []
        f.references = values["reference"] ?? []
        f.before = values["before"]?.first
        f.since = values["since"]?.first
        if let until = values["until"]?.first {
            f.until = try DockerTime.nanoseconds(until, now: Int64(time(nil)) * 1_000_000_000) / 1_000_000_000
        }
        return f
    }
}

/// A row of `docker images`, as plain values.
public struct ImageSummary: Sendable {
    public var id: String
    public var repoTags: [String]
    public var repoDigests: [String]
    public var created: Int64
    public var size: Int64
    /// -1 unless asked for, as dockerd.
    public var sharedSize: Int64
    public var labels: [String: String]
}

/// What `docker image inspect` shows.
public struct ImageDetails: Sendable {
    public var id: String
    public var repoTags: [String]
    public var repoDigests: [String]
    public var comment: String
    public var created: String
    public var dockerVersion: String
    public var author: String
    public var architecture: String
    public var variant: String?
    public var os: String
    public var osVersion: String?
    public var size: Int64
    /// The image's run configuration (Docker's `Config` keys).
    public var config: ContainerConfig?
    public var graphDriverData: [String: String]
    public var layers: [String]
    public var lastTagTime: String?
}

/// One line of `docker history`.
public struct ImageHistoryItem: Sendable {
    public var id: String
    public var created: Int64
    public var createdBy: String
    public var tags: [String]
    public var size: Int64
    public var comment: String
}

/// One image's disk use, for `docker system df`.
public struct ImageUsage: Sendable {
    public var id: String
    public var size: Int64
    public var sharedSize: Int64
    /// Containers (running or not) created from it.
    public var containers: Int
}
