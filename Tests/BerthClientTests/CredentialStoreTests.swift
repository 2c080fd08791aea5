import XCTest
@testable import berth

final class CredentialStoreTests: XCTestCase {
    func testRegistryKeysFollowTheDockerCLI() {
        XCTAssertEqual(CredentialStore.key(forRepository: "busybox"), "https://index.docker.io/v1/")
        XCTAssertEqual(CredentialStore.key(forRepository: "library/busybox"), "https://index.docker.io/v1/")
        XCTAssertEqual(CredentialStore.key(forRepository: "localhost:5000/app"), "localhost:5000")
        XCTAssertEqual(CredentialStore.key(forRepository: "quay.io/team/app"), "quay.io")
        XCTAssertEqual(CredentialStore.key(forServer: "https://index.docker.io/v1/"), "https://index.docker.io/v1/")
        XCTAssertEqual(CredentialStore.key(forServer: "http://localhost:5000/"), "localhost:5000")
    }

    func testConfigDirectoryFromTheEnvironment() {
        XCTAssertEqual(CredentialStore(environment: ["DOCKER_CONFIG": "/c"]).path, "/c/config.json")
        XCTAssertEqual(CredentialStore(environment: ["HOME": "/home/u"]).path, "/home/u/.docker/config.json")
    }
}
