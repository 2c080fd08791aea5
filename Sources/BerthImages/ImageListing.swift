import BerthOCI
import BerthOS

extension ImageStore {
    /// A row of `docker images`.
    public struct Summary: Sendable, Hashable {
        public var id: Digest
        public var manifestDigest: Digest
        /// Familiar forms: `busybox:latest`.
        public var repoTags: [String]
        public var repoDigests: [String]
        /// Unix seconds.
        public var created: Int64
        public var size: Int64
        public var labels: [String: String]
    }

    /// The images `filter` selects, newest first. With reference patterns, only the matching
    /// tags and digests are listed, as dockerd does.
    public func list(_ filter: ImageFilter = ImageFilter()) throws -> [Summary] {
        let r = snapshot
        func createdTime(of name: String) throws -> Int64 {
            let (rec, _) = try resolve(name, in: r)
            return rec.created.flatMap(Timestamp.unixSeconds) ?? 0
        }
        let before = try filter.before.map(createdTime)
        let since = try filter.since.map(createdTime)
        var out: [Summary] = []
        for rec in r.images.values {
            var tags = r.tags(of: rec.manifest.digest)
            var digests = rec.repoDigests.compactMap { try? Reference(parsing: $0) }
            if !filter.references.isEmpty {
                let matches = { (ref: Reference) in filter.references.contains { ref.familiarMatch($0) } }
                tags = tags.filter(matches)
                digests = digests.filter(matches)
                if tags.isEmpty && digests.isEmpty { continue }
            }
            switch filter.dangling {
            case true?: if !tags.isEmpty { continue }
            case false?: if tags.isEmpty && digests.isEmpty { continue }
            case nil: break
            }
            let created = rec.created.flatMap(Timestamp.unixSeconds) ?? 0
            if let before, created >= before { continue }
            if let since, created <= since { continue }
            if let until = filter.until, created > until { continue }
            let config = try? JSON.decode(ImageConfig.self, from: try content.read(rec.id), what: "config")
            let labels = config?.config?.labels ?? [:]
            if !filter.matchesLabels(labels) { continue }
            out.append(Summary(id: rec.id, manifestDigest: rec.manifest.digest, repoTags: tags.map(\.familiarString),
                               repoDigests: digests.map(\.familiarString), created: created, size: rec.size, labels: labels))
        }
        return out.sorted { ($0.created, $0.id.hex) > ($1.created, $1.id.hex) }
    }

    /// One line of `docker history`.
    public struct HistoryEntry: Sendable, Hashable {
        /// The image ID on the newest line, `<missing>` below it (dockerd knows no IDs for
        /// the steps that built an image it did not build).
        public var id: String
        /// Unix seconds.
        public var created: Int64
        public var createdBy: String
        /// Familiar tags of the image, on the newest line only.
        public var tags: [String]
        /// Size of the layer this step added (0 for steps without one).
        public var size: Int64
        public var comment: String
    }

    /// The steps of the config's history, newest first, each with the size of its layer.
    public func history(_ refOrID: String) throws -> [HistoryEntry] {
        let img = try image(refOrID)
        let layers = try manifest(of: img).layers
        var next = 0
        var out: [HistoryEntry] = []
        for h in img.config.history ?? [] {
            var size: Int64 = 0
            if h.emptyLayer != true {
                guard next < layers.count else {
                    throw ImageError.state("image \(img.id.shortHex): more non-empty layers in its history than it has layers")
                }
                size = layers[next].size
                next += 1
            }
            out.append(HistoryEntry(id: "<missing>", created: h.created.flatMap(Timestamp.unixSeconds) ?? 0, createdBy: h.createdBy ?? "",
                                    tags: [], size: size, comment: h.comment ?? ""))
        }
        out.reverse()
        if !out.isEmpty {
            out[0].id = img.id.string
            out[0].tags = img.repoTags.map(\.familiarString)
        }
        return out
    }

    /// Disk use of one image, for `docker system df`.
    public struct Usage: Sendable, Hashable {
        public var id: Digest
        /// All its layers.
        public var size: Int64
        /// Its layers that other images also use.
        public var sharedSize: Int64
    }

    /// The disk use of every image (each ID once).
    public func usage() throws -> [Usage] {
        let r = snapshot
        var records: [Digest: ImageRecord] = [:]
        for rec in r.images.values.sorted(by: { $0.manifest.digest < $1.manifest.digest }) where records[rec.id] == nil {
            records[rec.id] = rec
        }
        var layerSize: [Digest: Int64] = [:]
        var layerImages: [Digest: Set<Digest>] = [:]
        var stacks: [Digest: [Digest]] = [:]
        for (id, rec) in records {
            let manifest = try JSON.decode(ImageManifest.self, from: try content.read(rec.manifest.digest),
                                           what: "manifest \(rec.manifest.digest)")
            for (layer, diffID) in zip(manifest.layers, rec.diffIDs) {
                layerSize[diffID] = layer.size
                layerImages[diffID, default: []].insert(id)
            }
            stacks[id] = Array(Set(rec.diffIDs))
        }
        return stacks.map { id, diffIDs in
            Usage(id: id, size: records[id]!.size,
                  sharedSize: diffIDs.filter { layerImages[$0]!.count > 1 }.reduce(0) { $0 + (layerSize[$1] ?? 0) })
        }.sorted { $0.id < $1.id }
    }
}
