import BerthImages
import BerthOS

/// `docker system df`: what images, containers and volumes hold on disk.
public struct DiskUsage: Sendable {
    public var layersSize: Int64
    public var images: [(summary: ImageSummary, sharedSize: Int64, containers: Int)]
    public var containers: [Engine.Listing]
    public var volumes: [(volume: VolumeDetails, size: Int64)]
}

extension Engine {
    /// The parts asked for (`image`, `container`, `volume`; all when empty), as dockerd's
    /// `/system/df?type=` selects them.
    public func diskUsage(types: Set<String>) throws(EngineError) -> DiskUsage {
        let all = types.isEmpty
        var usage = DiskUsage(layersSize: 0, images: [], containers: [], volumes: [])
        if all || types.contains("image") {
            let perImage = Dictionary(uniqueKeysWithValues: try imageUsage().map { ($0.id, $0) })
            usage.images = try imageSummaries().map { s in
                (s, perImage[s.id]?.sharedSize ?? 0, perImage[s.id]?.containers ?? 0)
            }
            // What the unpacked layers take on disk, each once however many images share it.
            usage.layersSize = DirectorySize.of(images.snapshots.root + "/layers")
        }
        if all || types.contains("container") {
            usage.containers = try list(ListOptions(all: true, size: true, filters: ContainerFilters([:])))
        }
        if all || types.contains("volume") { usage.volumes = volumeUsage() }
        return usage
    }
}
