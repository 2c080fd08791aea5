import BerthOCI
import BerthOS
import Glibc
import NIOCore
import XCTest

@testable import BerthRegistry

/// A request body made of the given chunks.
struct Chunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let parts: [[UInt8]]

    init(_ parts: [UInt8]...) { self.parts = parts }

    struct AsyncIterator: AsyncIteratorProtocol {
        var rest: [[UInt8]]
        mutating func next() async throws -> ByteBuffer? {
            rest.isEmpty ? nil : ByteBuffer(bytes: rest.removeFirst())
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(rest: parts) }
}

final class RegistryStoreTests: XCTestCase {
    private var root = ""
    private var store: RegistryStore!

    override func setUpWithError() throws {
        var template = Array("/tmp/berth-registry-test-XXXXXX".utf8CString)
        root = String(cString: mkdtemp(&template)!)
        store = try RegistryStore(root: root)
    }

    override func tearDown() {
        _ = try? FileManager.default.removeItem(atPath: root)
    }

    private func blobFiles() -> [String] { store.entries(root + "/blobs/sha256").sorted() }

    func testChunkedUploadIsVisibleOnlyAfterItsDigestIsVerified() async throws {
        let data = Array("hello, registry".utf8)
        let digest = Digest.of(data)
        let id = try store.startUpload("app")
        let size = try await store.append("app", id, start: 0, body: Chunks(Array(data[0..<5]), Array(data[5..<9])))
        XCTAssertEqual(size, 9)
        XCTAssertEqual(try store.uploadSize("app", id), 9)
        XCTAssertNil(store.blobSize("app", digest))
        XCTAssertEqual(blobFiles(), [])
        try await store.finishUpload("app", id, digest: digest, body: Chunks(Array(data[9...])))
        XCTAssertEqual(store.blobSize("app", digest), Int64(data.count))
        XCTAssertEqual(blobFiles(), [digest.hex])
        XCTAssertEqual(FileManager.default.contents(atPath: root + "/blobs/sha256/" + digest.hex).map(Array.init), data)
        XCTAssertThrowsError(try store.uploadSize("app", id), "the upload is gone")
        XCTAssertNil(store.blobSize("other", digest), "linked only into the repository that uploaded it")
    }

    func testChunkThatDoesNotContinueTheUploadIsRefused() async throws {
        let id = try store.startUpload("app")
        _ = try await store.append("app", id, start: nil, body: Chunks([1, 2, 3]))
        do {
            _ = try await store.append("app", id, start: 5, body: Chunks([4]))
            XCTFail("accepted a gap")
        } catch let error as RegistryError {
            XCTAssertEqual(error.code, .rangeInvalid)
            XCTAssertEqual(error.headers.first(name: "Range"), "0-2")
        }
        XCTAssertEqual(try store.uploadSize("app", id), 3)
    }

    func testDigestMismatchStoresNothingAndDiscardsTheUpload() async throws {
        do {
            try await store.putBlob("app", digest: Digest.of([9, 9]), body: Chunks([1, 2, 3]))
            XCTFail("accepted a wrong digest")
        } catch let error as RegistryError {
            XCTAssertEqual(error.code, .digestInvalid)
        }
        XCTAssertEqual(blobFiles(), [])
        XCTAssertEqual(store.entries(root + "/uploads"), [])
    }

    func testUploadOfAnotherRepositoryIsUnknown() throws {
        let id = try store.startUpload("app")
        XCTAssertThrowsError(try store.uploadSize("other", id)) { XCTAssertEqual(($0 as? RegistryError)?.code, .blobUploadUnknown) }
        XCTAssertThrowsError(try store.uploadSize("app", "../../etc")) { XCTAssertEqual(($0 as? RegistryError)?.code, .blobUploadUnknown) }
    }

    func testUploadContinuesAfterARestartByRehashingItsFile() async throws {
        let id = try store.startUpload("app")
        _ = try await store.append("app", id, start: 0, body: Chunks([1, 2, 3]))
        let restarted = try RegistryStore(root: root)
        try await restarted.finishUpload("app", id, digest: Digest.of([1, 2, 3, 4]), body: Chunks([4]))
        XCTAssertEqual(restarted.blobSize("app", Digest.of([1, 2, 3, 4])), 4)
    }

    func testManifestNeedsItsBlobsAndIsServedByTagAndDigest() async throws {
        let config = Array(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.utf8)
        let layer: [UInt8] = [1, 2, 3]
        try await store.putBlob("app", digest: Digest.of(config), body: Chunks(config))
        let manifest = ImageManifest(
            config: Descriptor(mediaType: MediaType.imageConfig, digest: Digest.of(config), size: Int64(config.count)),
            layers: [Descriptor(mediaType: MediaType.layer, digest: Digest.of(layer), size: 3)])
        let bytes = Array(try JSONEncoder().encode(manifest))
        XCTAssertThrowsError(try store.putManifest("app", "v1", bytes: bytes, contentType: MediaType.imageManifest)) {
            XCTAssertEqual(($0 as? RegistryError)?.code, .manifestBlobUnknown)
            XCTAssertEqual(($0 as? RegistryError)?.detail, Digest.of(layer).string)
        }
        try await store.putBlob("app", digest: Digest.of(layer), body: Chunks(layer))
        let stored = try store.putManifest("app", "v1", bytes: bytes, contentType: nil)
        XCTAssertEqual(stored.digest, Digest.of(bytes))
        XCTAssertEqual(try store.manifest("app", "v1").bytes, bytes)
        XCTAssertEqual(try store.manifest("app", stored.digest.string).mediaType, MediaType.imageManifest)
        XCTAssertEqual(store.tags("app"), ["v1"])
        XCTAssertEqual(store.repositories(), ["app"])

        XCTAssertEqual(try GarbageCollector(store: store).collect(dryRun: false).removedBlobs, [])
        try store.deleteManifest("app", stored.digest.string)
        XCTAssertEqual(store.tags("app"), [])
        let report = try GarbageCollector(store: store).collect(dryRun: false)
        XCTAssertEqual(Set(report.removedBlobs), [Digest.of(config), Digest.of(layer), Digest.of(bytes)])
        XCTAssertEqual(blobFiles(), [])
    }

    // MARK: Hostile neighbours

    private func mode(_ path: String) -> mode_t {
        var st = stat()
        XCTAssertEqual(lstat(path, &st), 0, path)
        return st.st_mode & 0o777
    }

    private func everything(under path: String) -> [String] {
        store.entries(path).flatMap { entry -> [String] in
            let child = path + "/" + entry
            return [child] + (FileSystem.isDirectory(child) ? everything(under: child) : [])
        }
    }

    func testStoreIsPrivateToItsUserAndAnOpenStoreIsTightened() async throws {
        let data = Array("blob".utf8)
        try await store.putBlob("app", digest: Digest.of(data), body: Chunks(data))
        _ = try store.startUpload("app")
        let paths = [root] + everything(under: root)
        XCTAssertGreaterThan(paths.count, 8)
        for path in paths { XCTAssertEqual(mode(path) & 0o077, 0, path) }

        for path in paths { chmod(path, FileSystem.isDirectory(path) ? 0o755 : 0o644) }
        _ = try RegistryStore(root: root)
        for path in paths { XCTAssertEqual(mode(path), FileSystem.isDirectory(path) ? 0o700 : 0o600, path) }
    }

    func testGarbageCollectionAndServingExcludeEachOther() throws {
        do {
            let serving = try store.lock(for: .serving)
            let another = try store.lock(for: .serving)
            XCTAssertThrowsError(try GarbageCollector(store: store).collect(dryRun: false)) {
                XCTAssertTrue("\($0)".contains("in use by a running berth-registry"), "\($0)")
            }
            XCTAssertNoThrow(try GarbageCollector(store: store).collect(dryRun: true), "a dry run only reads")
            withExtendedLifetime((serving, another)) {}
        }
        do {
            let collecting = try store.lock(for: .collecting)
            XCTAssertThrowsError(try store.lock(for: .serving)) {
                XCTAssertTrue("\($0)".contains("garbage collection is running"), "\($0)")
            }
            withExtendedLifetime(collecting) {}
        }
        XCTAssertNoThrow(try store.lock(for: .serving), "released with its holder")
    }

    func testAbandonedUploadsArePurgedWithTheirStateButBusyOnesAreKept() async throws {
        let abandoned = try store.startUpload("app")
        _ = try await store.append("app", abandoned, start: 0, body: Chunks([1, 2, 3]))
        let fresh = try store.startUpload("app")
        XCTAssertEqual(store.uploadsInMemory, 2)
        // Last written an hour ago.
        var times = [timespec(tv_sec: time(nil) - 3600, tv_nsec: 0), timespec(tv_sec: time(nil) - 3600, tv_nsec: 0)]
        XCTAssertEqual(utimensat(AT_FDCWD, root + "/uploads/\(abandoned)/data", &times, 0), 0)

        XCTAssertEqual(store.purgeUploads(idleFor: .seconds(60)), [abandoned])
        XCTAssertFalse(FileSystem.exists(root + "/uploads/" + abandoned))
        XCTAssertEqual(store.uploadsInMemory, 1)
        XCTAssertThrowsError(try store.uploadSize("app", abandoned)) {
            XCTAssertEqual(($0 as? RegistryError)?.code, .blobUploadUnknown)
        }
        XCTAssertEqual(try store.uploadSize("app", fresh), 0)

        // One being written to is never taken from under its request.
        let (body, continuation) = AsyncThrowingStream<ByteBuffer, any Error>.makeStream()
        let store = self.store!
        let writing = Task { try await store.append("app", fresh, start: nil, body: body) }
        while store.uploadsBusy == 0 { try await Task.sleep(for: .milliseconds(5)) }
        XCTAssertEqual(store.purgeUploads(idleFor: .zero), [])
        continuation.yield(ByteBuffer(bytes: [4]))
        continuation.finish()
        let written = try await writing.value
        XCTAssertEqual(written, 1)
        try await Task.sleep(for: .milliseconds(20))
        XCTAssertEqual(store.purgeUploads(idleFor: .zero), [fresh])
        XCTAssertEqual(store.uploadsInMemory, 0)
    }

    func testConcurrentWritesOfOnePathNeverShareATemporaryFile() async throws {
        let path = root + "/blobs/sha256/same"
        let failures = await withTaskGroup(of: Int.self) { group in
            for i in 0..<16 {
                group.addTask {
                    var failed = 0
                    for _ in 0..<20 {
                        do {
                            try RegistryStore.writeAtomically(path, Array(repeating: UInt8(i), count: 4096), durable: false)
                        } catch {
                            failed += 1
                        }
                    }
                    return failed
                }
            }
            return await group.reduce(0, +)
        }
        XCTAssertEqual(failures, 0)
        let bytes = try FileSystem.readBytes(path)
        XCTAssertEqual(bytes.count, 4096)
        XCTAssertEqual(Set(bytes).count, 1, "one writer's bytes, whole")
        XCTAssertEqual(store.entries(root + "/blobs/sha256"), ["same"], "no temporary file left")
        XCTAssertTrue(RegistryStore.isTemporary(".tmp-Ab12Cd"))
        XCTAssertTrue(RegistryStore.isTemporary("v1.tmp-1234"), "as older versions named them")
        XCTAssertFalse(RegistryStore.isTemporary("v1.tmp-rc"))
    }
}
