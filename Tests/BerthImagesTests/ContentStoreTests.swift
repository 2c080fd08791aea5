import BerthOCI
import Foundation
import Glibc
import Synchronization
import XCTest
@testable import BerthImages

final class ContentStoreTests: XCTestCase {
    private func names(_ dir: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() }

    func testIngestCreatesAnOCILayoutAndStoresBlobsByDigest() throws {
        let scratch = Scratch()
        let store = try ContentStore(root: scratch.sub("content"))
        XCTAssertEqual(String(decoding: readFile(scratch.sub("content/oci-layout"))!, as: UTF8.self), "{\"imageLayoutVersion\":\"1.0.0\"}")
        XCTAssertEqual(try store.readIndex().manifests, [])
        let bytes = Array("hello blob".utf8)
        let d = try store.ingest(bytes: bytes, mediaType: "text/plain", expected: Digest.of(bytes))
        XCTAssertEqual(d, Descriptor(mediaType: "text/plain", digest: Digest.of(bytes), size: 10))
        XCTAssertTrue(store.has(d.digest))
        XCTAssertEqual(try store.read(d.digest), bytes)
        XCTAssertEqual(try store.size(of: d.digest), 10)
        XCTAssertEqual(names(scratch.sub("content/blobs/sha256")), [d.digest.hex])
        XCTAssertEqual(try store.list(), [d.digest: 10])
        // The same content again is the same blob.
        XCTAssertEqual(try store.ingest(bytes: bytes, mediaType: "text/plain"), d)
        XCTAssertEqual(names(scratch.sub("content/ingest")), [])
        try store.delete(d.digest)
        XCTAssertFalse(store.has(d.digest))
        expectError(.notFound) { _ = try store.read(d.digest) }
    }

    func testDigestMismatchDeletesTheTemporaryFileAndPublishesNothing() throws {
        let scratch = Scratch()
        let store = try ContentStore(root: scratch.sub("content"))
        let wrong = Digest.of(Array("something else".utf8))
        let actual = Digest.of(Array("payload".utf8))
        expectError(.invalidArgument, containing: "digest mismatch: expected \(wrong), got \(actual)") {
            _ = try store.ingest(bytes: Array("payload".utf8), expected: wrong)
        }
        var reader = BytesReader(Array("payload".utf8))
        expectError(.invalidArgument, containing: "size mismatch: expected 3 bytes") {
            _ = try store.ingest(from: &reader, size: 3)
        }
        XCTAssertEqual(names(scratch.sub("content/blobs/sha256")), [])
        XCTAssertEqual(names(scratch.sub("content/ingest")), [])
    }

    func testABlobIsInvisibleUntilItsWriterCommits() throws {
        let scratch = Scratch()
        let store = try ContentStore(root: scratch.sub("content"))
        let w = try store.writer()
        try w.write(Array(repeating: 1, count: 100_000))
        XCTAssertEqual(names(scratch.sub("content/blobs/sha256")), [])
        XCTAssertEqual(names(scratch.sub("content/ingest")).count, 1)
        let d = try w.commit()
        XCTAssertEqual(names(scratch.sub("content/blobs/sha256")), [d.digest.hex])
        XCTAssertEqual(names(scratch.sub("content/ingest")), [])
        // An abandoned writer cleans up after itself.
        do {
            let w2 = try store.writer()
            try w2.write([1, 2, 3])
        }
        XCTAssertEqual(names(scratch.sub("content/ingest")), [])
    }

    func testIngestFromAFileDescriptorStreams() throws {
        let scratch = Scratch()
        let store = try ContentStore(root: scratch.sub("content"))
        let path = scratch.sub("big")
        let data = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(data)))
        let d = try store.ingest(path: path, expected: Digest.of(data))
        XCTAssertEqual(d.size, 3_000_000)
    }

    func testConcurrentIngestsOfTheSameAndOtherContentAllSucceed() throws {
        let scratch = Scratch()
        let store = try ContentStore(root: scratch.sub("content"))
        let shared = [UInt8](repeating: 7, count: 200_000)
        let results = Mutex<[Digest]>([])
        DispatchQueue.concurrentPerform(iterations: 16) { i in
            let bytes = i % 2 == 0 ? shared : shared + [UInt8(i)]
            if let d = try? store.ingest(bytes: bytes).digest { results.withLock { $0.append(d) } }
        }
        XCTAssertEqual(results.withLock { $0.count }, 16)
        XCTAssertEqual(Set(results.withLock { $0 }).count, 9)
        XCTAssertEqual(names(scratch.sub("content/blobs/sha256")).count, 9)
        XCTAssertEqual(names(scratch.sub("content/ingest")), [])
    }

    func testGarbageCollectionKeepsWhatRootsLeasesAndIndexReach() throws {
        let scratch = Scratch()
        let store = try ContentStore(root: scratch.sub("content"))
        let config = try store.ingest(bytes: Array("{}".utf8), mediaType: MediaType.imageConfig)
        let layer = try store.ingest(bytes: Array("layer".utf8), mediaType: MediaType.layer)
        let manifest = try store.ingest(bytes: Array(try JSONEncoder().encode(ImageManifest(config: config, layers: [layer]))),
                                        mediaType: MediaType.imageManifest)
        let index = try store.ingest(bytes: Array(try JSONEncoder().encode(ImageIndex(manifests: [manifest]))),
                                     mediaType: MediaType.imageIndex)
        let orphan = try store.ingest(bytes: Array("orphan".utf8))
        let lease = store.beginLease()
        let leased = try store.ingest(bytes: Array("leased".utf8), lease: lease)
        let result = try store.collectGarbage(roots: [index.digest])
        XCTAssertEqual(result.removed, [orphan.digest])
        XCTAssertEqual(result.bytes, 6)
        for d in [config, layer, manifest, index, leased] { XCTAssertTrue(store.has(d.digest)) }
        store.endLease(lease)
        XCTAssertEqual(try store.collectGarbage(roots: [index.digest]).removed, [leased.digest])
        // index.json is a root too.
        try store.writeIndex(ImageIndex(manifests: [manifest]))
        let removed = try store.collectGarbage(roots: []).removed
        XCTAssertEqual(removed, [index.digest])
        XCTAssertTrue(store.has(layer.digest))
    }
}
