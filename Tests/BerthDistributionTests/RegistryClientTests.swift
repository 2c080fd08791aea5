import BerthImages
import BerthOCI
import FoundationEssentials
import XCTest

@testable import BerthDistribution

final class AuthChallengeTests: XCTestCase {
    func testBearerChallengeParametersAreParsedWithQuotesAndEscapes() {
        let header = #"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push", error="insufficient_scope", note="a \"quoted\" word""#
        let challenges = AuthChallenge.parse(header)
        XCTAssertEqual(challenges.count, 1)
        XCTAssertEqual(challenges[0].scheme, "bearer")
        XCTAssertEqual(challenges[0].realm, "https://auth.docker.io/token")
        XCTAssertEqual(challenges[0].service, "registry.docker.io")
        XCTAssertEqual(challenges[0].scope, "repository:library/busybox:pull,push")
        XCTAssertEqual(challenges[0].parameters["error"], "insufficient_scope")
        XCTAssertEqual(challenges[0].parameters["note"], #"a "quoted" word"#)
    }

    func testBasicChallengeAndSeveralChallengesInOneHeader() {
        let challenges = AuthChallenge.parse(#"Basic realm="Registry Realm", Bearer realm=https://t.example/token,service=reg"#)
        XCTAssertEqual(challenges.map(\.scheme), ["basic", "bearer"])
        XCTAssertEqual(challenges[0].realm, "Registry Realm")
        XCTAssertEqual(challenges[1].realm, "https://t.example/token")
        XCTAssertEqual(challenges[1].service, "reg")
    }

    func testRegistryAuthHeaderIsBase64URLJSONAndEmptyMeansAnonymous() throws {
        let json = #"{"username":"alice","password":"s3cret?>","serveraddress":"localhost:5000"}"#
        let url = Data(json.utf8).base64EncodedString().replacing("+", with: "-").replacing("/", with: "_").replacing("=", with: "")
        let creds = try XCTUnwrap(RegistryCredentials.decodeHeader(url))
        XCTAssertEqual(creds.username, "alice")
        XCTAssertEqual(creds.password, "s3cret?>")
        XCTAssertEqual(creds.serverAddress, "localhost:5000")
        XCTAssertNil(try RegistryCredentials.decodeHeader("e30="))
        XCTAssertNil(try RegistryCredentials.decodeHeader(nil))
        XCTAssertThrowsError(try RegistryCredentials.decodeHeader("!!not base64!!"))
    }
}

final class RegistryConfigurationTests: XCTestCase {
    func testDockerHubTriesMirrorsBeforeTheOrigin() {
        let config = RegistryConfiguration(mirrors: ["http://127.0.0.1:5000/", "https://mirror.example/prefix"])
        let endpoints = config.endpoints(for: Reference.defaultDomain)
        XCTAssertEqual(endpoints.map(\.base), ["http://127.0.0.1:5000", "https://mirror.example/prefix", "https://registry-1.docker.io"])
        XCTAssertEqual(endpoints.map(\.isMirror), [true, true, false])
    }

    func testPlainHTTPOnlyForLoopbackAndInsecureRegistries() {
        let config = RegistryConfiguration(insecureRegistries: ["reg.internal:5000", "10.0.0.0/8"])
        XCTAssertEqual(config.endpoints(for: "localhost:5000").map(\.base), ["https://localhost:5000", "http://localhost:5000"])
        XCTAssertEqual(config.endpoints(for: "127.0.0.9:80").map(\.scheme), ["https", "http"])
        XCTAssertEqual(config.endpoints(for: "[::1]:5000").map(\.scheme), ["https", "http"])
        XCTAssertEqual(config.endpoints(for: "reg.internal:5000").map(\.scheme), ["https", "http"])
        XCTAssertEqual(config.endpoints(for: "10.1.2.3:5000").map(\.scheme), ["https", "http"])
        XCTAssertEqual(config.endpoints(for: "11.1.2.3:5000").map(\.scheme), ["https"])
        XCTAssertEqual(config.endpoints(for: "reg.internal").map(\.scheme), ["https"])
        XCTAssertEqual(config.endpoints(for: "ghcr.io").map(\.base), ["https://ghcr.io"])
    }

    func testReferencesNormaliseAsDocker() throws {
        XCTAssertEqual(try Reference(parsing: "busybox").withDefaultTag().description, "docker.io/library/busybox:latest")
        let withPort = try Reference(parsing: "localhost:5000/a/b:v1")
        XCTAssertEqual(withPort.domain, "localhost:5000")
        XCTAssertEqual(withPort.path, "a/b")
        XCTAssertEqual(withPort.tag, "v1")
        let digest = "sha256:" + String(repeating: "a", count: 64)
        let pinned = try Reference(parsing: "127.0.0.1:5000/app@" + digest)
        XCTAssertEqual(pinned.digest?.string, digest)
        XCTAssertEqual(pinned.withDefaultTag().tag, nil)
    }
}

final class PlatformSelectionTests: XCTestCase {
    private func manifestEntry(_ n: Character, _ arch: String, _ variant: String? = nil, os: String = "linux") -> Descriptor {
        Descriptor(mediaType: MediaType.imageManifest, digest: try! Digest(hex: String(repeating: n, count: 64)), size: 1,
                   platform: Platform(architecture: arch, os: os, variant: variant))
    }

    func testParsesOsArchVariantWithAliases() throws {
        XCTAssertEqual(try PlatformSelection.parse("linux/arm64/v8"), Platform(architecture: "arm64", os: "linux", variant: "v8"))
        XCTAssertEqual(try PlatformSelection.parse("linux/x86_64"), Platform(architecture: "amd64", os: "linux"))
        XCTAssertNil(try PlatformSelection.parse(""))
        XCTAssertThrowsError(try PlatformSelection.parse("linux//v7"))
    }

    func testSelectsTheRequestedPlatformAndSkipsAttestations() {
        let index = ImageIndex(manifests: [manifestEntry("0", "unknown", os: "unknown"), manifestEntry("1", "arm", "v6"), manifestEntry("2", "arm", "v7"),
                                           manifestEntry("3", "amd64"), manifestEntry("4", "arm64", "v8")])
        XCTAssertEqual(PlatformSelection.select(from: index, platform: Platform(architecture: "amd64", os: "linux"))?.platform?.architecture, "amd64")
        XCTAssertEqual(PlatformSelection.select(from: index, platform: Platform(architecture: "arm", os: "linux", variant: "v7"))?.platform?.variant, "v7")
        XCTAssertEqual(PlatformSelection.select(from: index, platform: Platform(architecture: "arm64", os: "linux"))?.platform?.architecture, "arm64")
        XCTAssertNil(PlatformSelection.select(from: index, platform: Platform(architecture: "s390x", os: "linux")))
        XCTAssertNil(PlatformSelection.select(from: ImageIndex(manifests: [manifestEntry("0", "unknown", os: "unknown")]), platform: nil))
    }
}

final class TransferProgressTests: XCTestCase {
    func testHumanSizeIsDecimalWithThreeSignificantDigits() {
        XCTAssertEqual(TransferProgress.humanSize(512), "512B")
        XCTAssertEqual(TransferProgress.humanSize(1234), "1.23kB")
        XCTAssertEqual(TransferProgress.humanSize(2_220_000), "2.22MB")
        XCTAssertEqual(TransferProgress.humanSize(12_300_000), "12.3MB")
        XCTAssertEqual(TransferProgress.humanSize(100_000_000), "100MB")
        XCTAssertEqual(TransferProgress.humanSize(1_000_000), "1MB")
    }

    func testProgressBarIsFiftyWideWithSizes() {
        let half = TransferProgress(id: "abc", status: "Downloading", current: 1_000_000, total: 2_000_000)
        XCTAssertEqual(half.progressText, "[" + String(repeating: "=", count: 25) + ">" + String(repeating: " ", count: 25) + "]      1MB/2MB")
        XCTAssertNil(TransferProgress(id: "abc", status: "Pull complete").progressText)
    }
}

final class RegistryErrorTests: XCTestCase {
    private let ref = try! Reference(parsing: "localhost:5000/app:v1")

    private func error(_ status: Int, _ body: String, _ op: RegistryOperation = .pull) -> RegistryError {
        RegistryError.response(status: status, reason: "Reason", body: Array(body.utf8), reference: ref, operation: op)
    }

    func testPullErrorsAreWordedAsDockerd() {
        let unknown = error(404, #"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#)
        XCTAssertEqual(unknown, RegistryError(.notFound, "manifest for localhost:5000/app:v1 not found: manifest unknown: manifest unknown"))
        let name = error(404, #"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#)
        XCTAssertEqual(name.message, "repository localhost:5000/app not found: name unknown: repository name not known to registry")
        let denied = error(403, #"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#)
        XCTAssertEqual(denied.code, .notFound)
        XCTAssertEqual(denied.message, "pull access denied for localhost:5000/app, repository does not exist or may require 'docker login': denied: requested access to the resource is denied")
    }

    func testStatusesWithoutBodiesAndOtherOperations() {
        XCTAssertEqual(error(401, "", .push), RegistryError(.unauthorized, "unauthorized: authentication required"))
        XCTAssertEqual(error(500, "oops", .push), RegistryError(.unavailable, "received unexpected HTTP status: 500 Reason"))
        XCTAssertEqual(error(400, #"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"}]}"#, .push),
                       RegistryError(.invalid, "digest invalid: provided digest did not match uploaded content"))
    }
}

final class SearchTermTests: XCTestCase {
    func testSearchTermsNameTheirRegistryOnlyWhenTheFirstPartIsAHost() {
        XCTAssertTrue(RegistryClient.splitSearchTerm("busybox") == ("docker.io", "busybox"))
        XCTAssertTrue(RegistryClient.splitSearchTerm("library/busybox") == ("docker.io", "library/busybox"))
        XCTAssertTrue(RegistryClient.splitSearchTerm("localhost:5000/busy") == ("localhost:5000", "busy"))
        XCTAssertTrue(RegistryClient.splitSearchTerm("localhost/busy") == ("localhost", "busy"))
        XCTAssertTrue(RegistryClient.splitSearchTerm("quay.io/team/app") == ("quay.io", "team/app"))
    }
}
