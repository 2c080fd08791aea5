import BerthOCI
import BerthOS
import Glibc

/// Mark and sweep over the store, as distribution's `garbage-collect`: every manifest revision
/// of every repository marks itself, its config and layers, and an index's children; blobs
/// nothing marks are removed, with the repository links that point at them, and so are uploads
/// older than `uploadExpiry`. A blob uploaded during the sweep but not yet referenced by a
/// manifest would be collected, so it runs only with the store's exclusive lock: never while
/// a server has the store (a dry run only reads, and shares the lock with servers).
public struct GarbageCollector: Sendable {
    public struct Report: Sendable {
        public var removedBlobs: [Digest] = []
        public var freedBytes: Int64 = 0
        public var removedUploads: [String] = []
    }

    public let store: RegistryStore
    /// distribution's default upload purging age.
    public var uploadExpiry: Int64 = 7 * 24 * 3600

    public init(store: RegistryStore) { self.store = store }

    /// Removes what is unreferenced, or with `dryRun` only reports it. Refuses while the store
    /// is being served.
    public func collect(dryRun: Bool) throws(RegistryError) -> Report {
        let lock = try store.lock(for: dryRun ? .serving : .collecting)
        defer { withExtendedLifetime(lock) {} }
        var marked: Set<Digest> = []
        let repositories = store.repositories()
        for name in repositories {
            for digest in revisions(name) {
                marked.insert(digest)
                guard let bytes = try? FileSystem.readBytes(store.blobPath(digest)),
                      let parsed = try? ParsedManifest(bytes: bytes, contentType: nil)
                else { continue }
                for reference in parsed.references { marked.insert(reference.digest) }
            }
        }
        var report = Report()
        for hex in store.entries(store.root + "/blobs/sha256") {
            guard let digest = try? Digest(hex: hex), !marked.contains(digest) else { continue }
            var st = stat()
            if stat(store.blobPath(digest), &st) == 0 { report.freedBytes += Int64(st.st_size) }
            report.removedBlobs.append(digest)
            if !dryRun {
                unlink(store.blobPath(digest))
                for name in repositories { unlink(store.layerLink(name, digest)) }
            }
        }
        let now = Int64(time(nil))
        for id in store.entries(store.root + "/uploads") {
            let started = (try? FileSystem.readString(store.uploadDirectory(id) + "/startedat")).flatMap { Int64($0) } ?? 0
            guard now - started > uploadExpiry else { continue }
            report.removedUploads.append(id)
            if !dryRun { try? FileSystem.removeTree(store.uploadDirectory(id)) }
        }
        report.removedBlobs.sort()
        return report
    }

    private func revisions(_ name: String) -> [Digest] {
        store.entries(store.repositoryPath(name) + "/_manifests/revisions/sha256").compactMap { try? Digest(hex: $0) }
    }
}
