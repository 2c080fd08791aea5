import BerthOCI
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

        XCTAssertEqual(GarbageCollector(store: store).collect(dryRun: false).removedBlobs, [])
        try store.deleteManifest("app", stored.digest.string)
        XCTAssertEqual(store.tags("app"), [])
        let report = GarbageCollector(store: store).collect(dryRun: false)
        XCTAssertEqual(Set(report.removedBlobs), [Digest.of(config), Digest.of(layer), Digest.of(bytes)])
        XCTAssertEqual(blobFiles(), [])
    }
}
