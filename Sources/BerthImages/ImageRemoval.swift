import BerthOCI
import BerthOS

/// A container that uses an image, as `delete` and `prune` need to know of it.
public struct ImageUser: Sendable, Hashable {
    public var imageID: Digest
    public var containerID: String
    public var running: Bool

    public init(imageID: Digest, containerID: String, running: Bool) {
        self.imageID = imageID; self.containerID = containerID; self.running = running
    }

    var shortID: String { String(containerID.prefix(12)) }
}

extension ImageStore {
    public enum DeleteResult: Sendable, Hashable {
        case untagged(String)
        /// The image ID, then the ChainIDs of the layers that went with it.
        case deleted(Digest)
    }

    /// What one `delete` did.
    public struct Removal: Sendable, Hashable {
        public var imageID: Digest
        public var items: [DeleteResult]
        /// Bytes of blobs collected afterwards.
        public var reclaimedBytes: Int64
        public var deletedImage: Bool { items.contains(.deleted(imageID)) }
    }

    /// `docker rmi` with dockerd's rules (daemon/images/image_delete.go):
    ///
    /// - By reference: the reference goes; refused without `force` when it is the image's only
    ///   one and a container uses the image. The image goes too once no reference is left,
    ///   unless a container uses it (it stays, untagged).
    /// - By ID: an image whose references are all in one repository loses them and goes;
    ///   references in several repositories or a stopped container need `force`; a running
    ///   container refuses even then.
    ///
    /// Blobs and unpacked layers nothing uses any more are collected afterwards.
    @discardableResult
    public func delete(_ refOrID: String, force: Bool = false, users: [ImageUser] = []) throws -> Removal {
        let (id, items, deletedDiffIDs): (Digest, [DeleteResult], [Digest]?) = try commit { r in
            let (rec, match) = try resolve(refOrID, in: r)
            let id = rec.id
            let short = id.shortHex
            let using = users.filter { $0.imageID == id }
            var refs = r.references(of: id)
            var out: [DeleteResult] = []
            func conflict(_ forcing: String, _ why: String) -> ImageError {
                .conflict("conflict: unable to delete \(short) (\(forcing)) - \(why)")
            }

            var untaggedLast = false
            if case .reference(let ref) = match {
                if !force && Self.isSingleReference(refs), let user = using.first {
                    throw ImageError.conflict("conflict: unable to remove repository reference \"\(refOrID)\" (must force) - container \(user.shortID) is using its referenced image \(short)")
                }
                guard refs.contains(ref) else { throw ImageError.notFound("No such image: \(refOrID)") }
                r.remove(ref)
                out.append(.untagged(ref.familiarString))
                refs.removeAll { $0 == ref }
                // The last tag of a repository takes that repository's digests with it.
                if ref.digest == nil && !refs.contains(where: { $0.digest == nil && $0.name == ref.name }) {
                    for d in refs where d.digest != nil && d.name == ref.name {
                        r.remove(d)
                        out.append(.untagged(d.familiarString))
                    }
                    refs.removeAll { $0.digest != nil && $0.name == ref.name }
                }
                if !refs.isEmpty { return (id, out, nil) }
                untaggedLast = true
            } else if Self.isSingleReference(refs) {
                if let user = using.first(where: \.running) {
                    throw conflict("cannot be forced", "image is being used by running container \(user.shortID)")
                }
                if !force, let user = using.first {
                    throw conflict("must be forced", "image is being used by stopped container \(user.shortID)")
                }
                for ref in refs {
                    r.remove(ref)
                    out.append(.untagged(ref.familiarString))
                }
                refs = []
            }

            let running = using.first(where: \.running)
            let stopped = force ? nil : using.first
            if let running {
                // An image whose last tag just went stays, untagged, while a container uses it.
                if untaggedLast { return (id, out, nil) }
                throw conflict("cannot be forced", "image is being used by running container \(running.shortID)")
            }
            if !force && !refs.isEmpty { throw conflict("must be forced", "image is referenced in multiple repositories") }
            if let stopped {
                if untaggedLast { return (id, out, nil) }
                throw conflict("must be forced", "image is being used by stopped container \(stopped.shortID)")
            }
            for ref in refs {
                r.remove(ref)
                out.append(.untagged(ref.familiarString))
            }
            for (key, other) in r.images where other.id == id { r.images.removeValue(forKey: key) }
            out.append(.deleted(id))
            return (id, out, rec.diffIDs)
        }
        guard let diffIDs = deletedDiffIDs else { return Removal(imageID: id, items: items, reclaimedBytes: 0) }
        let garbage = try collectGarbage()
        let removed = Set(garbage.layers)
        // dockerd lists the layers that went with the image, top first, by ChainID.
        let layers = zip(diffIDs, ChainID.all(diffIDs)).filter { removed.contains($0.0) }.map { DeleteResult.deleted($0.1) }
        return Removal(imageID: id, items: items + layers.reversed(), reclaimedBytes: garbage.blobs.bytes)
    }

    /// dockerd's `isSingleReference`: one tag, possibly with digests of that same repository.
    static func isSingleReference(_ refs: [Reference]) -> Bool {
        if refs.count <= 1 { return refs.count == 1 }
        var tag: Reference?
        var digestNames = Set<String>()
        for ref in refs {
            if ref.digest != nil {
                digestNames.insert(ref.name)
            } else if tag == nil {
                tag = ref
            } else {
                return false
            }
        }
        return digestNames.count == 1 && digestNames.contains((tag ?? refs[0]).name)
    }

    /// `docker image prune`: deletes the images `filter` selects (by default, with `dangling`
    /// unset, only untagged ones; `dangling=false` every image) that no container uses.
    public func prune(_ filter: ImageFilter, users: [ImageUser] = []) throws -> [Removal] {
        let danglingOnly = filter.dangling ?? true
        let r = snapshot
        var seen = Set<Digest>()
        var out: [Removal] = []
        for rec in r.images.values.sorted(by: { $0.manifest.digest < $1.manifest.digest }) where seen.insert(rec.id).inserted {
            let refs = r.references(of: rec.id)
            if danglingOnly && refs.contains(where: { $0.digest == nil }) { continue }
            if let until = filter.until, (rec.created.flatMap(Timestamp.unixSeconds) ?? 0) > until { continue }
            if !filter.labels.isEmpty || !filter.excludedLabels.isEmpty {
                guard filter.matchesLabels((try? image(rec, r))?.config.config?.labels ?? [:]) else { continue }
            }
            // Through `delete`, so every rule about containers holds; a refusal just skips.
            for target in refs.isEmpty ? [rec.id.hex] : refs.map(\.description) {
                do { out.append(try delete(target, users: users)) } catch let e as ImageError where e.code == .conflict || e.code == .notFound {
                    continue
                }
            }
        }
        return out
    }
}

extension ImageStore.Repositories {
    /// Every tag and registry digest that names an image ID (under any of its manifests).
    func references(of id: Digest) -> [Reference] {
        var out: [Reference] = []
        for rec in images.values.sorted(by: { $0.manifest.digest < $1.manifest.digest }) where rec.id == id {
            out += tags(of: rec.manifest.digest)
            out += rec.repoDigests.sorted().compactMap { try? Reference(parsing: $0) }
        }
        return out
    }

    /// Removes one tag or registry digest.
    mutating func remove(_ ref: Reference) {
        if ref.digest == nil {
            tags.removeValue(forKey: ref.description)
            return
        }
        for (key, rec) in images where rec.repoDigests.contains(ref.description) {
            images[key]?.repoDigests.removeAll { $0 == ref.description }
        }
    }
}
