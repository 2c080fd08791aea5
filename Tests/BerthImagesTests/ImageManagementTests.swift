import BerthOCI
import Foundation
import Glibc
import XCTest
@testable import BerthImages

/// Listing filters, history, removal and prune rules, and hostile load/import input, on stores
/// of small imported images.
final class ImageManagementTests: XCTestCase {
    private func names(_ dir: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() }

    /// Imports a one-file image; `created` sets its time so ordering filters are deterministic.
    @discardableResult
    private func importImage(_ store: ImageStore, _ scratch: Scratch, _ file: String, ref: String?, created: String,
                             changes: [String] = []) throws -> ImageStore.Image {
        let path = scratch.sub(file + ".tar")
        try makeTar(path) { w in try w.addFile(file, Array(file.utf8)) }
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        return try store.importImage(from: fd, reference: ref, changes: changes, created: created)
    }

    func testPathPatternIsGoPathMatch() {
        let cases: [(String, String, Bool)] = [
            ("busy*", "busybox", true), ("busybox:*", "busybox:latest", true), ("*", "a/b", false),
            ("*/*", "a/b", true), ("b?sybox", "busybox", true), ("b?sybox", "b/sybox", false),
            ("[a-c]usybox", "busybox", true), ("[^a-c]usybox", "busybox", false), ("\\*", "*", true),
            ("busybox", "busybox:latest", false), ("[", "[", false), ("a[", "a", false),
        ]
        for (pattern, name, want) in cases {
            XCTAssertEqual(PathPattern.match(pattern, name), want, "\(pattern) ~ \(name)")
        }
    }

    func testReferencePatternsMatchTheFamiliarFormAndTheBareName() throws {
        let ref = try Reference(parsing: "busybox:1.36")
        XCTAssertTrue(ref.familiarMatch("busybox"))
        XCTAssertTrue(ref.familiarMatch("busy*"))
        XCTAssertTrue(ref.familiarMatch("busybox:1.*"))
        XCTAssertFalse(ref.familiarMatch("busybox:latest"))
        let deep = try Reference(parsing: "localhost:5000/team/app:v1")
        XCTAssertTrue(deep.familiarMatch("localhost:5000/team/*"))
        XCTAssertFalse(deep.familiarMatch("team/*"))
    }

    func testLabelFiltersNeedEveryLabelAndExcludedOnesNone() {
        let labels = ["tier": "web", "team": "a"]
        XCTAssertTrue(ImageFilter(labels: ["tier", "team=a"]).matchesLabels(labels))
        XCTAssertFalse(ImageFilter(labels: ["tier=db"]).matchesLabels(labels))
        XCTAssertFalse(ImageFilter(labels: ["tier", "owner"]).matchesLabels(labels))
        XCTAssertFalse(ImageFilter(excludedLabels: ["team=a"]).matchesLabels(labels))
        XCTAssertTrue(ImageFilter(excludedLabels: ["team=b"]).matchesLabels(labels))
    }

    func testListFiltersByDanglingLabelReferenceBeforeAndSince() throws {
        let scratch = Scratch()
        let store = try ImageStore(root: scratch.sub("a"))
        let old = try importImage(store, scratch, "old", ref: "app:1", created: "2020-01-01T00:00:00Z", changes: ["LABEL tier=web"])
        let mid = try importImage(store, scratch, "mid", ref: "app:2", created: "2021-01-01T00:00:00Z")
        try store.tag("app:2", as: "other:2")
        let new = try importImage(store, scratch, "new", ref: nil, created: "2022-01-01T00:00:00Z")

        XCTAssertEqual(try store.list().map(\.id), [new.id, mid.id, old.id], "newest first")
        XCTAssertEqual(try store.list(ImageFilter(dangling: true)).map(\.id), [new.id])
        XCTAssertEqual(try store.list(ImageFilter(dangling: false)).map(\.id), [mid.id, old.id])
        XCTAssertEqual(try store.list(ImageFilter(labels: ["tier=web"])).map(\.id), [old.id])
        // Only the tags that match are listed.
        let byRef = try store.list(ImageFilter(references: ["app:*"]))
        XCTAssertEqual(byRef.map(\.id), [mid.id, old.id])
        XCTAssertEqual(byRef[0].repoTags, ["app:2"])
        XCTAssertEqual(try store.list(ImageFilter(references: ["oth*"])).map(\.repoTags), [["other:2"]])
        XCTAssertEqual(try store.list(ImageFilter(before: "app:2")).map(\.id), [old.id])
        XCTAssertEqual(try store.list(ImageFilter(since: "app:2")).map(\.id), [new.id])
        expectError(.notFound) { _ = try store.list(ImageFilter(before: "nothing:here")) }
    }

    func testDeleteFollowsDockerdRulesForContainersAndRepositories() throws {
        let scratch = Scratch()
        let store = try ImageStore(root: scratch.sub("a"))
        let img = try importImage(store, scratch, "f", ref: "app:1", created: "2020-01-01T00:00:00Z")
        let cid = String(repeating: "a", count: 64)
        let running = [ImageUser(imageID: img.id, containerID: cid, running: true)]
        let stopped = [ImageUser(imageID: img.id, containerID: cid, running: false)]
        let short = img.id.shortHex

        // By ID with a running container: refused even when forced.
        expectError(.conflict, containing: "conflict: unable to delete \(short) (cannot be forced) - image is being used by running container aaaaaaaaaaaa") {
            try store.delete(img.id.hex, force: true, users: running)
        }
        // By ID with a stopped container: refused unless forced.
        expectError(.conflict, containing: "conflict: unable to delete \(short) (must be forced) - image is being used by stopped container aaaaaaaaaaaa") {
            try store.delete(img.id.hex, users: stopped)
        }
        // Forcing the last tag away while a container runs: untagged, the image stays dangling.
        XCTAssertEqual(try store.delete("app:1", force: true, users: running).items, [.untagged("app:1")])
        XCTAssertEqual(try store.list(ImageFilter(dangling: true)).map(\.id), [img.id])

        // Tags in two repositories: by ID needs force, then every tag goes with the image.
        try store.tag(img.id.hex, as: "app:1")
        try store.tag(img.id.hex, as: "other:1")
        expectError(.conflict, containing: "(must be forced) - image is referenced in multiple repositories") {
            try store.delete(String(img.id.hex.prefix(6)))
        }
        let removal = try store.delete(String(img.id.hex.prefix(6)), force: true, users: stopped)
        XCTAssertEqual(removal.items, [.untagged("app:1"), .untagged("other:1"), .deleted(img.id), .deleted(img.diffIDs[0])])
        // Even two tags of one repository count as "multiple" (dockerd's isSingleReference); one tag
        // goes with the image by ID without force.
        let again = try importImage(store, scratch, "g", ref: "app:1", created: "2020-01-01T00:00:00Z")
        try store.tag("app:1", as: "app:2")
        expectError(.conflict, containing: "referenced in multiple repositories") { try store.delete(again.id.string) }
        try store.untag("app:2")
        XCTAssertEqual(try store.delete(again.id.string).items.prefix(2), [.untagged("app:1"), .deleted(again.id)])
        XCTAssertEqual(names(scratch.sub("a/content/blobs/sha256")), [])
        expectError(.notFound, containing: "No such image: app:1") { try store.delete("app:1") }
    }

    func testPruneTakesDanglingImagesByDefaultAndAllUnusedOnesWithDanglingFalse() throws {
        let scratch = Scratch()
        let store = try ImageStore(root: scratch.sub("a"))
        let tagged = try importImage(store, scratch, "t", ref: "keep:1", created: "2020-01-01T00:00:00Z")
        let dangling = try importImage(store, scratch, "d", ref: nil, created: "2020-01-01T00:00:00Z")
        let used = try importImage(store, scratch, "u", ref: nil, created: "2020-01-01T00:00:00Z")
        let users = [ImageUser(imageID: used.id, containerID: "c1", running: false)]

        let first = try store.prune(ImageFilter(), users: users)
        XCTAssertEqual(first.map(\.imageID), [dangling.id])
        XCTAssertTrue(first[0].deletedImage)
        XCTAssertGreaterThan(first[0].reclaimedBytes, 0)
        XCTAssertEqual(Set(try store.list().map(\.id)), [tagged.id, used.id])

        // `until` keeps what is newer; labels must match.
        XCTAssertEqual(try store.prune(ImageFilter(dangling: false, until: 1_000), users: users).count, 0)
        XCTAssertEqual(try store.prune(ImageFilter(dangling: false, labels: ["x"]), users: users).count, 0)
        let all = try store.prune(ImageFilter(dangling: false), users: users)
        XCTAssertEqual(all.filter(\.deletedImage).map(\.imageID), [tagged.id])
        XCTAssertEqual(try store.list().map(\.id), [used.id], "an image a container uses stays")
    }

    func testHistoryIsNewestFirstWithTheIDOnTheTopLineOnly() throws {
        let scratch = Scratch()
        let store = try ImageStore(root: scratch.sub("a"))
        let img = try importImage(store, scratch, "h", ref: "hist:1", created: "2020-01-01T00:00:00Z")
        let history = try store.history("hist:1")
        XCTAssertEqual(history.count, 1)
        XCTAssertEqual(history[0].id, img.id.string)
        XCTAssertEqual(history[0].tags, ["hist:1"])
        XCTAssertEqual(history[0].comment, "Imported from -")
        XCTAssertEqual(history[0].created, 1_577_836_800)
        XCTAssertEqual(history[0].size, try store.manifest(of: img).layers[0].size)
        XCTAssertEqual(img.comment, "Imported from -", "the config's top-level comment, for inspect")
    }

    func testUsageCountsTheLayersImagesShare() throws {
        let scratch = Scratch()
        let store = try ImageStore(root: scratch.sub("a"))
        let a = try importImage(store, scratch, "same", ref: "a:1", created: "2020-01-01T00:00:00Z")
        // The same rootfs with another config: another image over the same layer.
        let b = try importImage(store, scratch, "same", ref: "b:1", created: "2020-01-01T00:00:00Z", changes: ["CMD x"])
        let alone = try importImage(store, scratch, "alone", ref: "c:1", created: "2020-01-01T00:00:00Z")
        XCTAssertNotEqual(a.id, b.id)
        let layer = try store.manifest(of: a).layers[0].size
        let usage = Dictionary(uniqueKeysWithValues: try store.usage().map { ($0.id, $0) })
        XCTAssertEqual(usage[a.id]?.size, layer)
        XCTAssertEqual(usage[a.id]?.sharedSize, layer)
        XCTAssertEqual(usage[b.id]?.sharedSize, layer)
        XCTAssertEqual(usage[alone.id]?.sharedSize, 0)
    }

    func testImportStoresThePlainTarWhateverTheCompression() throws {
        let scratch = Scratch()
        try makeTar(scratch.sub("rootfs.tar")) { w in try w.addFile("hello", Array("hi".utf8)) }
        try runTool(["sh", "-c", "xz -k \(scratch.sub("rootfs.tar"))"])
        let store = try ImageStore(root: scratch.sub("a"))
        let fd = open(scratch.sub("rootfs.tar.xz"), O_RDONLY)
        defer { close(fd) }
        let img = try store.importImage(from: fd, reference: "xz:1")
        let layer = try store.manifest(of: img).layers[0]
        XCTAssertEqual(layer.mediaType, MediaType.layer)
        XCTAssertEqual(layer.digest, img.diffIDs[0])
        XCTAssertEqual(readFile(store.snapshots.layerDirectory(img.diffIDs[0]) + "/hello"), Array("hi".utf8))
    }

    /// A docker-archive whose only layer is `layer` (a tar built by `body`).
    private func archive(_ scratch: Scratch, _ name: String, _ body: (TarWriter) throws -> Void) throws -> String {
        let layerPath = scratch.sub(name + "-layer.tar")
        try makeTar(layerPath, body)
        let layer = try XCTUnwrap(readFile(layerPath))
        let diffID = Digest.of(layer)
        let config = ImageConfig(architecture: "amd64", os: "linux", rootfs: .init(diffIDs: [diffID]))
        let configBytes = Array(try JSONEncoder().encode(config))
        let configName = "blobs/sha256/" + Digest.of(configBytes).hex
        let layerName = "blobs/sha256/" + diffID.hex
        let manifest = [DockerArchiveManifestEntry(config: configName, repoTags: [name + ":latest"], layers: [layerName])]
        let path = scratch.sub(name + ".tar")
        try makeTar(path) { w in
            try w.addFile(configName, configBytes)
            try w.addFile(layerName, layer)
            try w.addFile("manifest.json", Array(try JSONEncoder().encode(manifest)))
        }
        return path
    }

    func testHostileLayersRefuseTheWholeLoadAndLeaveNothingStored() throws {
        try XCTSkipUnless(isRoot, "unpacking applies ownership")
        let scratch = Scratch()
        let store = try ImageStore(root: scratch.sub("a"))
        let hostile = [
            ("dotdot", "escapes the layer root", { (w: TarWriter) in try w.addFile("../../outside", Array("x".utf8)) }),
            ("hardlink", "escapes the layer root", { (w: TarWriter) in try w.addHardlink("passwd", target: "../../../etc/passwd") }),
            ("dangling-hardlink", "not found", { (w: TarWriter) in try w.addHardlink("a", target: "nowhere") }),
        ]
        for (name, message, body) in hostile {
            let path = try archive(scratch, name, body)
            expectError(.invalidArgument, containing: message) { _ = try store.load(path: path) }
            XCTAssertEqual(try store.list().count, 0, name)
            XCTAssertEqual(names(scratch.sub("a/content/blobs/sha256")), [], name)
            XCTAssertEqual(names(scratch.sub("a/content/ingest")), [], name)
            XCTAssertEqual(names(scratch.sub("a/layers")), [], name)
        }
        XCTAssertFalse(exists(scratch.path + "/outside"))
        // A write through an absolute symlink stays inside the layer.
        let contained = try archive(scratch, "symlink") { w in
            try w.addSymlink("etc", target: "/")
            try w.addFile("etc/evil", Array("x".utf8))
        }
        let img = try store.load(path: contained)[0]
        XCTAssertEqual(readFile(store.snapshots.layerDirectory(try store.image(img.id.string).diffIDs[0]) + "/evil"), Array("x".utf8))
        XCTAssertFalse(exists("/evil"))
    }

    func testAHostileImportLeavesNothingStored() throws {
        try XCTSkipUnless(isRoot, "unpacking applies ownership")
        let scratch = Scratch()
        let store = try ImageStore(root: scratch.sub("a"))
        try makeTar(scratch.sub("evil.tar")) { w in try w.addFile("../evil", Array("x".utf8)) }
        let fd = open(scratch.sub("evil.tar"), O_RDONLY)
        defer { close(fd) }
        expectError(.invalidArgument, containing: "escapes the layer root") { _ = try store.importImage(from: fd, reference: "evil") }
        XCTAssertEqual(try store.list().count, 0)
        XCTAssertEqual(names(scratch.sub("a/content/blobs/sha256")), [])
        XCTAssertEqual(names(scratch.sub("a/layers")), [])
        // Not a tar at all.
        let junk = open(scratch.sub("junk"), O_RDWR | O_CREAT, 0o600)
        defer { close(junk) }
        _ = write(junk, "not a tarball at all, just text", 31)
        lseek(junk, 0, SEEK_SET)
        expectError(.invalidArgument) { _ = try store.importImage(from: junk) }
        XCTAssertEqual(names(scratch.sub("a/content/blobs/sha256")), [])
    }

    func testImportChangesTakeExecAndShellFormsAndRefuseWhatDockerRefuses() throws {
        var c = ContainerConfig()
        try ConfigChange.apply(["CMD [\"/bin/sh\"]", "ENV A=1", "ENV A=2 B=\"x y\"", "  ", "# comment"], to: &c)
        XCTAssertEqual(c.cmd, ["/bin/sh"])
        XCTAssertEqual(c.env, ["A=2", "B=x y"])
        try ConfigChange.apply(["CMD echo hi"], to: &c)
        XCTAssertEqual(c.cmd, ["/bin/sh", "-c", "echo hi"])
        expectError(.invalidArgument, containing: "CMD requires at least one argument") { try ConfigChange.apply(["CMD"], to: &c) }
        expectError(.invalidArgument, containing: "FROM is not a valid change command") { try ConfigChange.apply(["FROM x"], to: &c) }
        expectError(.invalidArgument, containing: "unmatched") { try ConfigChange.apply(["ENV A=\"x"], to: &c) }
    }
}

final class LabelFilterTests: XCTestCase {
    func testKeyKeyValueAndEmptyValue() {
        let labels = ["tier": "web", "empty": ""]
        XCTAssertTrue(LabelFilter.holds("tier", in: labels))
        XCTAssertTrue(LabelFilter.holds("tier=web", in: labels))
        XCTAssertFalse(LabelFilter.holds("tier=db", in: labels))
        XCTAssertFalse(LabelFilter.holds("tier=", in: labels))
        XCTAssertTrue(LabelFilter.holds("empty=", in: labels))
        XCTAssertTrue(LabelFilter.holds("a=b=c", in: ["a": "b=c"]))
        XCTAssertFalse(LabelFilter.holds("missing", in: labels))
    }
}
