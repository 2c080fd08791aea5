import BerthOCI
import XCTest
@testable import BerthImages

final class ReferenceTests: XCTestCase {
    func testNormalisesLikeTheDockerCLI() throws {
        let hex = String(repeating: "a", count: 64)
        let table: [(String, String, String)] = [
            // input, fully qualified, familiar
            ("busybox", "docker.io/library/busybox", "busybox"),
            ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
            ("library/busybox", "docker.io/library/busybox", "busybox"),
            ("docker.io/busybox", "docker.io/library/busybox", "busybox"),
            ("index.docker.io/library/busybox:latest", "docker.io/library/busybox:latest", "busybox:latest"),
            ("user/app", "docker.io/user/app", "user/app"),
            ("docker.io/library/a/b", "docker.io/library/a/b", "library/a/b"),
            ("host:5000/a/b:tag", "host:5000/a/b:tag", "host:5000/a/b:tag"),
            ("localhost/app", "localhost/app", "localhost/app"),
            ("localhost:5000", "docker.io/library/localhost:5000", "localhost:5000"),
            ("registry.example.com/team/app", "registry.example.com/team/app", "registry.example.com/team/app"),
            ("[::1]:5000/app:v1", "[::1]:5000/app:v1", "[::1]:5000/app:v1"),
            ("Host.Example/app", "Host.Example/app", "Host.Example/app"),
            ("a__b/c.d-e---f:V_1.0-x", "docker.io/a__b/c.d-e---f:V_1.0-x", "a__b/c.d-e---f:V_1.0-x"),
            ("busybox@sha256:\(hex)", "docker.io/library/busybox@sha256:\(hex)", "busybox@sha256:\(hex)"),
            ("busybox:1@sha256:\(hex)", "docker.io/library/busybox:1@sha256:\(hex)", "busybox:1@sha256:\(hex)"),
        ]
        for (input, full, familiar) in table {
            let r = try Reference(parsing: input)
            XCTAssertEqual(r.description, full, input)
            XCTAssertEqual(r.familiarString, familiar, input)
        }
        XCTAssertEqual(try Reference(parsing: "busybox").withDefaultTag().description, "docker.io/library/busybox:latest")
        XCTAssertEqual(try Reference(parsing: "busybox@sha256:\(hex)").withDefaultTag().tag, nil)
        XCTAssertEqual(try Reference(parsing: "host:5000/a/b:tag").domain, "host:5000")
        XCTAssertEqual(try Reference(parsing: "host:5000/a/b:tag").path, "a/b")
    }

    func testRejectsInvalidReferencesWithAReason() {
        let hex = String(repeating: "a", count: 64)
        let table: [(String, String)] = [
            ("", "empty reference"),
            (hex, "cannot specify 64-byte hexadecimal strings"),
            ("Busybox", "must be lowercase"),
            ("docker.io/Library/busybox", "must be lowercase"),
            ("busybox:", "tag"),
            ("busybox:-x", "tag"),
            ("busybox:" + String(repeating: "t", count: 129), "tag"),
            ("a//b", "path components"),
            ("a/b/", "path components"),
            ("-a", "path components"),
            ("a..b", "path components"),
            ("busybox@sha256:abc", "64 hex digits"),
            ("busybox@md5:\(hex)", "unsupported algorithm"),
            ("bad_host:5000x/a", "registry host"),
            ("-host.com/a", "registry host"),
            ("a/" + String(repeating: "b", count: 260), "255 characters"),
            ("a b", "path components"),
        ]
        for (input, reason) in table {
            XCTAssertThrowsError(try Reference(parsing: input), input) { e in
                let e = e as! ImageError
                XCTAssertEqual(e.code, .invalidArgument, input)
                XCTAssertTrue(e.message.contains(reason), "\(input): \(e.message)")
            }
        }
    }
}
