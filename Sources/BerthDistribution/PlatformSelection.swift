import BerthOCI

/// Choosing one image from a multi-platform index, as dockerd's platform matcher does.
public enum PlatformSelection {
    /// Parses `os[/arch[/variant]]` (`linux/arm64/v8`, `linux/amd64`); nil or empty means none.
    public static func parse(_ text: String?) throws(RegistryError) -> Platform? {
        guard let text, !text.isEmpty else { return nil }
        let parts = text.lowercased().split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard (1...3).contains(parts.count), parts.allSatisfy({ !$0.isEmpty }) else {
            throw RegistryError(.invalid, "\"\(text)\": unknown operating system or architecture: invalid argument")
        }
        let os = parts[0]
        var arch = parts.count > 1 ? parts[1] : Platform.current.architecture
        var variant = parts.count > 2 ? parts[2] : nil
        // containerd's platforms.Normalize: the common aliases.
        switch arch {
        case "x86_64", "x86-64": arch = "amd64"
        case "aarch64": arch = "arm64"
        case "armhf": arch = "arm"; variant = variant ?? "v7"
        case "armel": arch = "arm"; variant = variant ?? "v6"
        default: break
        }
        if arch == "arm64" && variant == "8" { variant = "v8" }
        return Platform(architecture: arch, os: os, variant: variant)
    }

    /// The descriptor of `index` for `platform` (this machine's when nil): an exact variant match
    /// first, then any compatible one. Entries that are not image manifests (attestations,
    /// referrers' artifacts) are never chosen.
    public static func select(from index: ImageIndex, platform: Platform?) -> Descriptor? {
        let want = platform ?? Platform.current
        let images = index.manifests.filter { MediaType.isManifest($0.mediaType) || MediaType.isIndex($0.mediaType) }
            .filter { $0.platform?.architecture != "unknown" }
        if let exact = images.first(where: { d in
            guard let p = d.platform else { return false }
            return p.os == want.os && p.architecture == want.architecture && p.variant == want.variant
        }) {
            return exact
        }
        return images.first { d in d.platform.map { want.matches($0) } ?? false }
    }

    /// `linux/amd64`, `linux/arm64/v8`.
    public static func describe(_ p: Platform) -> String {
        [p.os, p.architecture, p.variant].compactMap { $0 }.joined(separator: "/")
    }
}
