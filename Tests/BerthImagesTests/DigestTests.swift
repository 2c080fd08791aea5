import BerthOCI
import Foundation
import XCTest
@testable import BerthImages

final class DigestTests: XCTestCase {
    func testSHA256KnownVectors() {
        XCTAssertEqual(Digest.of([UInt8]()).hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(Digest.of(Array("abc".utf8)).hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(Digest.of(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)).hex,
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(Digest.of([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)).hex,
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testSHA256StreamingMatchesOneShotAcrossBlockBoundaries() {
        var g = SystemRandomNumberGenerator()
        let data = (0..<1000).map { _ in UInt8.random(in: 0...255, using: &g) }
        let whole = Digest.of(data)
        for chunk in [1, 3, 55, 56, 63, 64, 65, 127, 128, 999] {
            var h = SHA256()
            var i = 0
            while i < data.count {
                h.update(data[i..<min(i + chunk, data.count)])
                i += chunk
            }
            XCTAssertEqual(h.finalize(), whole, "chunk \(chunk)")
        }
        // Every padding case: lengths around the 55/56/64-byte edges.
        let lengths = [54, 55, 56, 57, 63, 64, 65, 119, 120, 121, 128]
        let script = lengths.map { "head -c \($0) /dev/zero | sha256sum" }.joined(separator: "; ")
        let expected = try! runTool(["sh", "-c", script]).split(separator: "\n").map { String($0.prefix(64)) }
        XCTAssertEqual(lengths.map { Digest.of([UInt8](repeating: 0, count: $0)).hex }, expected)
    }

    /// A hasher is a value: a copy taken mid-stream goes on independently (the registry keeps
    /// an upload's hash state between chunks).
    func testSHA256CopiesAreIndependent() {
        var a = SHA256()
        a.update(Array("abc".utf8))
        var b = a
        b.update(Array("def".utf8))
        XCTAssertEqual(a.finalize(), Digest.of(Array("abc".utf8)))
        XCTAssertEqual(b.finalize(), Digest.of(Array("abcdef".utf8)))
    }

    func testSHA256OfRandomFiveMegabytesMatchesSha256sum() throws {
        let scratch = Scratch()
        let path = scratch.sub("random")
        try runTool(["sh", "-c", "head -c 5242880 /dev/urandom > \(path)"])
        let expected = try runTool(["sha256sum", path]).prefix(64)
        let bytes = readFile(path)!
        XCTAssertEqual(bytes.count, 5 << 20)
        XCTAssertEqual(Digest.of(bytes).hex, String(expected))
    }

    func testDigestParsingAcceptsOnlySha256WithLowercaseHex() throws {
        let hex = String(repeating: "ab", count: 32)
        XCTAssertEqual(try Digest("sha256:" + hex).hex, hex)
        XCTAssertEqual(try Digest("sha256:" + hex).string, "sha256:" + hex)
        let cases: [(String, String)] = [
            ("", "want sha256:"),
            (hex, "want sha256:"),
            ("sha512:" + hex, "unsupported algorithm \"sha512\""),
            (":" + hex, "missing algorithm"),
            ("sha256:" + hex.uppercased(), "lowercase"),
            ("sha256:" + hex.dropLast(), "64 hex digits, got 63"),
            ("sha256:" + hex + "0", "got 65"),
            ("sha256:" + hex.dropLast() + "g", "not a hex digit: g"),
        ]
        for (input, reason) in cases {
            XCTAssertThrowsError(try Digest(input), input) { e in
                let text = "\(e)"
                XCTAssertTrue(text.contains(reason) && text.contains("invalid digest"), "\(input): \(text)")
            }
        }
    }

    func testDigestCodesAsItsStringForm() throws {
        let d = Digest.of(Array("x".utf8))
        let json = try JSONEncoder().encode([d])
        XCTAssertEqual(String(decoding: json, as: UTF8.self), "[\"\(d.string)\"]")
        XCTAssertEqual(try JSONDecoder().decode([Digest].self, from: json), [d])
        XCTAssertThrowsError(try JSONDecoder().decode([Digest].self, from: Data("[\"md5:00\"]".utf8)))
    }

    func testChainIDFollowsTheImageSpecDefinition() {
        let a = Digest.of(Array("a".utf8)), b = Digest.of(Array("b".utf8)), c = Digest.of(Array("c".utf8))
        // Expected values from `printf 'sha256:<a> sha256:<b>' | sha256sum`.
        XCTAssertEqual(ChainID.all([a, b, c]).map(\.string), [
            "sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb",
            "sha256:51c0c8ace48498d6f5fee6b0592cc06f2da0f3cbe09c5a34a97dce85c3889676",
            "sha256:2fce7f8ce91bcf0a1428b36e1024639fdbd9469eea762dba98aa749631885106",
        ])
        XCTAssertNil(ChainID.of([]))
        XCTAssertEqual(ChainID.of([a]), a)
    }

    func testImageSpecDocumentsUseTheSpecKeys() throws {
        let json = """
        {"architecture":"amd64","os":"linux","os.version":"1","created":"2024-01-02T03:04:05Z",
         "config":{"User":"1:2","ExposedPorts":{"80/tcp":{}},"Env":["A=b"],"Entrypoint":["/e"],"Cmd":["c"],
                   "Volumes":{"/v":{}},"WorkingDir":"/w","Labels":{"k":"v"},"StopSignal":"SIGTERM","ArgsEscaped":true,
                   "Healthcheck":{"Test":["CMD","true"],"Interval":1000000000,"Retries":3}},
         "rootfs":{"type":"layers","diff_ids":["\(Digest.of([]).string)"]},
         "history":[{"created":"2024-01-02T03:04:05Z","created_by":"x","empty_layer":true,"comment":"c","author":"a"}]}
        """
        let c = try JSONDecoder().decode(ImageConfig.self, from: Data(json.utf8))
        XCTAssertEqual(c.config?.exposedPorts?.keys.first, "80/tcp")
        XCTAssertEqual(c.config?.healthcheck?.retries, 3)
        XCTAssertEqual(c.osVersion, "1")
        XCTAssertEqual(c.history?.first?.emptyLayer, true)
        XCTAssertEqual(c.rootfs.diffIDs, [Digest.of([])])
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let again = String(decoding: try encoder.encode(c), as: UTF8.self)
        for key in ["\"ExposedPorts\":{\"80\\/tcp\":{}}", "\"diff_ids\"", "\"created_by\"", "\"empty_layer\"", "\"os.version\"", "\"WorkingDir\""] {
            XCTAssertTrue(again.contains(key), "\(key) missing in \(again)")
        }
        let m = ImageManifest(config: Descriptor(mediaType: MediaType.imageConfig, digest: Digest.of([]), size: 0), layers: [])
        let mj = String(decoding: try encoder.encode(m), as: UTF8.self)
        XCTAssertTrue(mj.contains("\"schemaVersion\":2") && mj.contains("\"mediaType\":\"application\\/vnd.oci.image.manifest.v1+json\""), mj)
        XCTAssertEqual(MediaType.layerCompression(MediaType.dockerLayerGzip), .gzip)
        XCTAssertEqual(LayerCompression.detect([0x28, 0xb5, 0x2f, 0xfd, 0]), .zstd)
    }
}
