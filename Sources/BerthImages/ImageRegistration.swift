import BerthOCI

extension ImageStore {
    /// Registers an image whose manifest, config and layer blobs are already in the content
    /// store, each checked against its digest (a registry pull): unpacks the layers not
    /// unpacked yet (checking each DiffID), then records it with `repoDigest` and moves `tag`
    /// onto it. Returns the image ID.
    public func registerPulled(manifest: Descriptor, tag: Reference?, repoDigest: Reference) throws -> Digest {
        let m = try JSON.decode(ImageManifest.self, from: try content.read(manifest.digest), what: "manifest \(manifest.digest)")
        let imageConfig = try JSON.decode(ImageConfig.self, from: try content.read(m.config.digest),
                                          what: "image config \(m.config.digest)")
        guard imageConfig.rootfs.diffIDs.count == m.layers.count else {
            throw ImageError.invalid("manifest \(manifest.digest): \(m.layers.count) layers but the config lists \(imageConfig.rootfs.diffIDs.count) DiffIDs")
        }
        try unpack(layers: m.layers, diffIDs: imageConfig.rootfs.diffIDs)
        var rec = record(manifest: manifest, config: m.config, imageConfig: imageConfig, layers: m.layers)
        rec.repoDigests = [repoDigest.description]
        try register([Pending(record: rec, tags: tag.map { [$0] } ?? [])])
        return rec.id
    }
}
