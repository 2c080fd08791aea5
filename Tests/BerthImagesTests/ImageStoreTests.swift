import BerthOCI
import Foundation
import Glibc
import XCTest
@testable import BerthImages

final class ImageStoreTests: XCTestCase {
    /// One busybox docker-archive from scripts/mkimage-busybox.sh for the whole class.
    nonisolated(unsafe) private static var fixtures: Scratch?
    nonisolated(unsafe) private static var busyboxID = ""
    private static var busyboxArchive: String {
        let path = fixtures!.sub("busybox.tar")
        XCTAssertTrue(exists(path), "scripts/mkimage-busybox.sh did not build \(path)")
        return path
    }

    override class func setUp() {
        super.setUp()
        let scratch = Scratch()
        fixtures = scratch
        let out = try? runTool([scriptsDirectory + "/mkimage-busybox.sh", scratch.sub("busybox.tar")])
        busyboxID = out?.split(separator: " ").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
    }

    override class func tearDown() {
        fixtures = nil
        super.tearDown()
    }

    private func names(_ dir: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() }

    func testLoadOfTheBusyboxArchiveTagsItAndSaveLoadRoundTripsTheImageID() throws {
        let scratch = Scratch()
        let store = try ImageStore(root: scratch.sub("a"))
        let loaded = try store.load(path: Self.busyboxArchive)
        XCTAssertEqual(loaded.count, 1)
        XCTAssertEqual(loaded[0].id.string, Self.busyboxID)
        XCTAssertEqual(loaded[0].tags, ["busybox:latest"])
        let img = try store.image("busybox")
        XCTAssertEqual(img.id, loaded[0].id)
        XCTAssertEqual(img.repoTags.map(\.description), ["docker.io/library/busybox:latest"])
        XCTAssertEqual(img.config.config?.cmd, ["sh"])
        XCTAssertEqual(img.created, 0)
        // The archive's own OCI manifest is kept, not re-synthesised.
        let archivedIndex = try runTool(["tar", "xOf", Self.busyboxArchive, "index.json"])
        XCTAssertTrue(archivedIndex.contains(img.manifest.digest.string))

        // Saved and loaded into another store: the same image ID and manifest.
        try store.save(["busybox"], path: scratch.sub("saved.tar"))
        let other = try ImageStore(root: scratch.sub("b"))
        let again = try other.load(path: scratch.sub("saved.tar"))
        XCTAssertEqual(again.map(\.id), [img.id])
        XCTAssertEqual(again.map(\.manifestDigest), [img.manifest.digest])
        XCTAssertEqual(again.map(\.tags), [["busybox:latest"]])
        let list = try other.list()
        XCTAssertEqual(list.count, 1)
        XCTAssertEqual(list[0].repoTags, ["busybox:latest"])
        XCTAssertGreaterThan(list[0].size, 1_000_000)

        // The state survives a restart.
        let reopened = try ImageStore(root: scratch.sub("b"))
        XCTAssertEqual(try reopened.image("busybox:latest").id, img.id)
        // And the layout's index.json names the tag.
        XCTAssertEqual(try reopened.content.readIndex().manifests.first?.annotations?[AnnotationKey.containerdImageName],
                       "docker.io/library/busybox:latest")
    }

    func testImageResolutionByIDPrefixAndReference() throws {
        let scratch = Scratch()
        let store = try ImageStore(root: scratch.sub("a"))
        let id = try store.load(path: Self.busyboxArchive)[0].id
        for name in [id.string, id.hex, String(id.hex.prefix(12)), String(id.hex.prefix(1)), "sha256:" + id.hex.prefix(5),
                     "busybox", "busybox:latest", "docker.io/library/busybox:latest"] {
            XCTAssertEqual(try store.image(name).id, id, name)
        }
        let manifest = try store.image("busybox").manifest.digest
        XCTAssertEqual(try store.image("busybox@\(manifest)").id, id)
        expectError(.notFound, containing: "No such image: busybox:1") { _ = try store.image("busybox:1") }
        expectError(.notFound) { _ = try store.image("sha256:" + String(repeating: "0", count: 64)) }
        let other = id.hex.first == "f" ? "0" : "f"
        expectError(.notFound) { _ = try store.image(other) }
        expectError(.invalidArgument) { _ = try store.image("Not_Valid!") }
    }

    func testTagUntagAndDeleteFollowDockerRules() throws {
        let scratch = Scratch()
        let store = try ImageStore(root: scratch.sub("a"))
        let id = try store.load(path: Self.busyboxArchive)[0].id
        try store.tag("busybox", as: "mine/bb:1")
        try store.tag(id.hex, as: "busybox:stable")
        XCTAssertEqual(try store.image("mine/bb:1").id, id)
        expectError(.invalidArgument, containing: "digest") { try store.tag("busybox", as: "x@\(id)") }
        XCTAssertEqual(try store.list()[0].repoTags, ["busybox:latest", "busybox:stable", "mine/bb:1"])

        // A registry's name for the manifest shows as a RepoDigest and can be removed alone.
        try store.addRepoDigest(try Reference(parsing: "registry.local/bb"), to: try store.image("busybox"))
        let manifest = try store.image("busybox").manifest.digest
        XCTAssertEqual(try store.list()[0].repoDigests, ["registry.local/bb@\(manifest)"])
        XCTAssertEqual(try store.delete("registry.local/bb@\(manifest)").items, [.untagged("registry.local/bb@\(manifest)")])
        XCTAssertEqual(try store.list()[0].repoDigests, [])
        // By reference with other tags left: only untagged.
        XCTAssertEqual(try store.delete("busybox:stable").items, [.untagged("busybox:stable")])
        // By ID while tagged in two repositories: refused unless forced.
        expectError(.conflict, containing: "referenced in multiple repositories") { try store.delete(String(id.hex.prefix(8))) }
        try store.untag("mine/bb:1")
        expectError(.notFound) { try store.untag("mine/bb:1") }
        // The last tag of an image a container uses: refused unless forced.
        let stopped = [ImageUser(imageID: id, containerID: String(repeating: "c", count: 64), running: false)]
        expectError(.conflict, containing: "unable to remove repository reference \"busybox\" (must force) - container cccccccccccc is using its referenced image \(id.shortHex)") {
            try store.delete("busybox", users: stopped)
        }
        XCTAssertTrue(store.content.has(id))
        let diffID = try store.image("busybox").diffIDs[0]
        let removal = try store.delete("busybox", force: true, users: stopped)
        // The one layer goes with the image; its ChainID is its DiffID.
        XCTAssertEqual(removal.items, [.untagged("busybox:latest"), .deleted(id), .deleted(diffID)])
        XCTAssertGreaterThan(removal.reclaimedBytes, 1_000_000)
        XCTAssertEqual(try store.list().count, 0)
        XCTAssertEqual(try store.snapshots.layers(), [])
        expectError(.notFound) { _ = try store.image(id.string) }
        XCTAssertEqual(names(scratch.sub("a/content/blobs/sha256")), [], "blobs are collected")
    }

    func testTamperedArchivesFailAndLeaveNoTagNorBlob() throws {
        let scratch = Scratch()
        let store = try ImageStore(root: scratch.sub("a"))
        let extracted = scratch.mkdir("x")
        try runTool(["tar", "xf", Self.busyboxArchive, "-C", extracted])
        let manifest = try JSONDecoder().decode([DockerArchiveManifestEntry].self,
                                                from: Data(try XCTUnwrap(readFile(extracted + "/manifest.json"))))[0]
        func repack(_ name: String, _ change: (String) throws -> Void) throws -> String {
            let dir = scratch.sub("t-" + name)
            try runTool(["cp", "-a", extracted, dir])
            try change(dir)
            try runTool(["tar", "cf", scratch.sub(name + ".tar"), "-C", dir, "."])
            return scratch.sub(name + ".tar")
        }
        func assertNothingStored(file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertEqual(try store.list().count, 0, file: file, line: line)
            XCTAssertEqual(names(scratch.sub("a/content/blobs/sha256")), [], file: file, line: line)
            XCTAssertEqual(names(scratch.sub("a/content/ingest")), [], file: file, line: line)
        }

        // A flipped byte in the layer: its blob name no longer matches.
        let flipped = try repack("flip") { dir in
            let path = dir + "/" + manifest.layers[0]
            chmod(path, 0o644)
            var bytes = readFile(path)!
            bytes[bytes.count / 2] ^= 0xff
            XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        }
        expectError(.invalidArgument, containing: "digest mismatch") { _ = try store.load(path: flipped) }
        assertNothingStored()

        // A layer replaced under a name that matches its new content: the config's DiffID catches it.
        let swapped = try repack("swap") { dir in
            let other = Array("not the layer".utf8)
            let name = "blobs/sha256/" + Digest.of(other).hex
            XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/" + name, contents: Data(other)))
            let m = DockerArchiveManifestEntry(config: manifest.config, repoTags: ["busybox:latest"], layers: [name])
            XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/manifest.json", contents: try JSONEncoder().encode([m])))
            try FileManager.default.removeItem(atPath: dir + "/index.json")
        }
        expectError(.invalidArgument, containing: "DiffID mismatch") { _ = try store.load(path: swapped) }
        assertNothingStored()

        // A layer path that climbs out of the archive, and one that is missing.
        for (name, layer) in [("escape", "../../etc/passwd"), ("missing", "blobs/sha256/" + String(repeating: "0", count: 64))] {
            let tar = try repack(name) { dir in
                let m = DockerArchiveManifestEntry(config: manifest.config, repoTags: ["busybox:latest"], layers: [layer])
                XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/manifest.json", contents: try JSONEncoder().encode([m])))
            }
            expectError(.invalidArgument) { _ = try store.load(path: tar) }
            assertNothingStored()
        }

        // An archive entry named outside the archive.
        try makeTar(scratch.sub("evil.tar")) { w in try w.addFile("../manifest.json", Array("[]".utf8)) }
        expectError(.invalidArgument, containing: "escapes the archive") { _ = try store.load(path: scratch.sub("evil.tar")) }
        assertNothingStored()

        // The untouched archive still loads.
        XCTAssertEqual(try store.load(path: Self.busyboxArchive).count, 1)
    }

    func testLoadsTheClassicDockerSaveLayoutAndMultiImageArchives() throws {
        let scratch = Scratch()
        let dir = scratch.mkdir("x")
        try runTool(["tar", "xf", Self.busyboxArchive, "-C", dir])
        let entry = try JSONDecoder().decode([DockerArchiveManifestEntry].self,
                                             from: Data(try XCTUnwrap(readFile(dir + "/manifest.json"))))[0]
        // Docker before 25: <config hex>.json and <layer id>/layer.tar, the second image's layer a symlink.
        let configHex = String(entry.config.dropFirst("blobs/sha256/".count))
        try FileManager.default.moveItem(atPath: dir + "/" + entry.config, toPath: dir + "/\(configHex).json")
        try FileManager.default.createDirectory(atPath: dir + "/1111", withIntermediateDirectories: false)
        try FileManager.default.moveItem(atPath: dir + "/" + entry.layers[0], toPath: dir + "/1111/layer.tar")
        try FileManager.default.createDirectory(atPath: dir + "/2222", withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: dir + "/2222/layer.tar", withDestinationPath: "../1111/layer.tar")
        try FileManager.default.removeItem(atPath: dir + "/index.json")
        let entries = [
            DockerArchiveManifestEntry(config: "\(configHex).json", repoTags: ["busybox:latest"], layers: ["1111/layer.tar"]),
            DockerArchiveManifestEntry(config: "\(configHex).json", repoTags: ["localhost:5000/bb:2"], layers: ["2222/layer.tar"]),
        ]
        XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/manifest.json", contents: try JSONEncoder().encode(entries)))
        try runTool(["tar", "czf", scratch.sub("classic.tar.gz"), "-C", dir, "."])
        let store = try ImageStore(root: scratch.sub("a"))
        let loaded = try store.load(path: scratch.sub("classic.tar.gz"))
        XCTAssertEqual(loaded.map(\.id.string), [Self.busyboxID, Self.busyboxID])
        XCTAssertEqual(Set(try store.list()[0].repoTags), ["busybox:latest", "localhost:5000/bb:2"])

        // Two different images in one saved archive.
        try makeTar(scratch.sub("rootfs.tar")) { w in try w.addFile("hello", Array("hi".utf8)) }
        let fd = open(scratch.sub("rootfs.tar"), O_RDONLY)
        defer { close(fd) }
        let imported = try store.importImage(from: fd, reference: "hello")
        try store.save(["busybox", "hello:latest", imported.id.hex], path: scratch.sub("two.tar"))
        let other = try ImageStore(root: scratch.sub("b"))
        let again = try other.load(path: scratch.sub("two.tar"))
        XCTAssertEqual(Set(again.map(\.id.string)), [Self.busyboxID, imported.id.string])
        XCTAssertEqual(Set(try other.list().flatMap(\.repoTags)), ["busybox:latest", "hello:latest"])
    }

    func testLoadsAnOCILayoutArchiveWithoutManifestJSON() throws {
        let scratch = Scratch()
        let dir = scratch.mkdir("x")
        try runTool(["tar", "xf", Self.busyboxArchive, "-C", dir])
        try FileManager.default.removeItem(atPath: dir + "/manifest.json")
        try runTool(["tar", "cf", scratch.sub("oci.tar"), "-C", dir, "."])
        let store = try ImageStore(root: scratch.sub("a"))
        let loaded = try store.load(path: scratch.sub("oci.tar"))
        XCTAssertEqual(loaded.map(\.id.string), [Self.busyboxID])
        XCTAssertEqual(loaded.map(\.tags), [["busybox:latest"]])
    }

    func testPrepareRootfsUnpacksTheLayersOnceAndTheMountWorks() throws {
        try XCTSkipUnless(isRoot, "needs root to unpack devices and mount overlayfs")
        let scratch = Scratch()
        let store = try ImageStore(root: scratch.sub("a"))
        let img = try store.load(path: Self.busyboxArchive)[0]
        let m = try store.prepareRootfs(container: "c1", image: "busybox")
        XCTAssertEqual(m.lower, [store.snapshots.layerDirectory(try store.image("busybox").diffIDs[0])])
        guard mount("overlay", m.target, "overlay", 0, m.options) == 0 else {
            return XCTFail("mount: \(String(cString: strerror(errno)))")
        }
        defer { umount2(m.target, Int32(MNT_DETACH)) }
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: m.target + "/bin/sh"), "/bin/busybox")
        XCTAssertEqual(lstatOf(m.target + "/tmp")!.st_mode & 0o7777, 0o1777)
        // Deleting the image keeps the layer the container uses.
        umount2(m.target, Int32(MNT_DETACH))
        try store.delete(img.id.string, force: true)
        XCTAssertEqual(try store.snapshots.layers().count, 1)
        try store.snapshots.remove(container: "c1")
        try store.collectGarbage()
        XCTAssertEqual(try store.snapshots.layers().count, 0)
    }

    func testImportMakesAOneLayerImageWithTheChanges() throws {
        let scratch = Scratch()
        try makeTar(scratch.sub("rootfs.tar.gz"), compression: .gzip) { w in
            try w.addDirectory("bin")
            try w.addFile("bin/app", Array("#!/bin/sh\n".utf8), mode: 0o755)
        }
        let store = try ImageStore(root: scratch.sub("a"))
        let fd = open(scratch.sub("rootfs.tar.gz"), O_RDONLY)
        defer { close(fd) }
        let img = try store.importImage(from: fd, reference: "example/app:v1", changes: [
            "CMD [\"/bin/app\", \"--serve\"]",
            "ENV PATH=/bin LANG=\"C.UTF-8\"",
            "ENV GREETING hello world",
            "entrypoint /bin/sh",
            "WORKDIR /srv",
            "WORKDIR data",
            "LABEL org.example.name=\"my app\" tier=web",
            "USER 1000:1000",
            "EXPOSE 80 53/udp 8000-8001",
            "VOLUME [\"/data\"]",
            "STOPSIGNAL SIGINT",
        ], message: "from a test", created: "2024-05-06T07:08:09Z")
        let c = img.config.config!
        XCTAssertEqual(c.cmd, ["/bin/app", "--serve"], "CMD set in the same changes survives ENTRYPOINT")
        XCTAssertEqual(c.entrypoint, ["/bin/sh", "-c", "/bin/sh"])
        XCTAssertEqual(c.env, ["PATH=/bin", "LANG=C.UTF-8", "GREETING=hello world"])
        XCTAssertEqual(c.workingDir, "/srv/data")
        XCTAssertEqual(c.labels, ["org.example.name": "my app", "tier": "web"])
        XCTAssertEqual(c.user, "1000:1000")
        XCTAssertEqual(Set(c.exposedPorts!.keys), ["80/tcp", "53/udp", "8000/tcp", "8001/tcp"])
        XCTAssertEqual(Array(c.volumes!.keys), ["/data"])
        XCTAssertEqual(c.stopSignal, "SIGINT")
        XCTAssertEqual(img.created, 1_714_979_289)
        XCTAssertEqual(img.config.history?.first?.comment, "from a test")
        XCTAssertEqual(img.repoTags.map(\.familiarString), ["example/app:v1"])
        let manifest = try store.manifest(of: img)
        // Stored as the plain tar, as dockerd keeps layers: the blob is the DiffID.
        XCTAssertEqual(manifest.layers.map(\.mediaType), [MediaType.layer])
        XCTAssertEqual(manifest.layers.map(\.digest), img.diffIDs)
        // The DiffID is the digest of the uncompressed tar.
        let plain = try runTool(["sh", "-c", "gzip -dc \(scratch.sub("rootfs.tar.gz")) | sha256sum"]).prefix(64)
        XCTAssertEqual(img.diffIDs.map(\.hex), [String(plain)])

        expectError(.invalidArgument, containing: "RUN is not a valid change command") {
            _ = try store.importImage(from: fd, changes: ["RUN true"])
        }
        expectError(.invalidArgument, containing: "invalid port") {
            var c = ContainerConfig()
            try ConfigChange.apply(["EXPOSE 99999"], to: &c)
        }
    }
}
