import BerthOCI
import FoundationEssentials

/// A pushed manifest as the registry checks it: its media type (the body's `mediaType`, else
/// the request's Content-Type; both must agree), what it references, and its subject.
struct ParsedManifest {
    static let mediaTypes: Set<String> = [
        MediaType.imageManifest, MediaType.imageIndex, MediaType.dockerManifest, MediaType.dockerManifestList,
    ]

    var mediaType: String
    /// Blobs that must be in the repository: config and layers (foreign layers with `urls` aside).
    var blobs: [Descriptor] = []
    /// Manifests an index lists, which must be in the repository.
    var children: [Descriptor] = []
    var subject: Descriptor?
    /// The referrers API's `artifactType`: the manifest's own, else its config's media type.
    var artifactType: String?
    var annotations: [String: String]?

    /// Every field either kind may have.
    private struct Document: Decodable {
        var schemaVersion: Int?
        var mediaType: String?
        var artifactType: String?
        var config: Descriptor?
        var layers: [Descriptor]?
        var manifests: [Descriptor]?
        var subject: Descriptor?
        var annotations: [String: String]?
    }

    init(bytes: [UInt8], contentType: String?) throws(RegistryError) {
        let document: Document
        do {
            document = try RegistryJSON.decoder.decode(Document.self, from: Data(bytes))
        } catch {
            throw RegistryError(.manifestInvalid, "manifest invalid", detail: "\(error)")
        }
        let declared = contentType.map { String($0.split(separator: ";", omittingEmptySubsequences: false)[0].trimmingSpaces) }.flatMap { $0.isEmpty ? nil : $0 }
        if let own = document.mediaType, let declared, declared != own {
            throw RegistryError(.manifestInvalid, "manifest invalid", detail: "mediaType \(own) does not match Content-Type \(declared)")
        }
        guard let mediaType = document.mediaType ?? declared, Self.mediaTypes.contains(mediaType) else {
            throw RegistryError(.manifestInvalid, "manifest invalid", detail: "unsupported manifest media type \(document.mediaType ?? declared ?? "(none)")")
        }
        guard document.schemaVersion == 2 else {
            throw RegistryError(.manifestInvalid, "manifest invalid", detail: "schemaVersion must be 2")
        }
        self.mediaType = mediaType
        subject = document.subject
        annotations = document.annotations
        if MediaType.isIndex(mediaType) {
            guard let manifests = document.manifests else {
                throw RegistryError(.manifestInvalid, "manifest invalid", detail: "an index needs a manifests list")
            }
            children = manifests
            artifactType = document.artifactType
        } else {
            guard let config = document.config, let layers = document.layers else {
                throw RegistryError(.manifestInvalid, "manifest invalid", detail: "an image manifest needs config and layers")
            }
            blobs = [config] + layers.filter { ($0.urls ?? []).isEmpty }
            artifactType = document.artifactType ?? config.mediaType
        }
    }

    /// Every digest the manifest keeps alive in garbage collection.
    var references: [Descriptor] { blobs + children }
}
