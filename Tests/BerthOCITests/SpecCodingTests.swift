import BerthOCI
import Foundation
import XCTest

final class SpecCodingTests: XCTestCase {
    func testDecodesRuncStyleConfigAndKeepsOptionalFieldsAbsent() throws {
        let json = """
        {"ociVersion":"1.0.2","process":{"user":{"uid":1,"gid":2,"additionalGids":[3]},"args":["sh"],"cwd":"/",
         "capabilities":{"bounding":["CAP_KILL"]},"rlimits":[{"type":"RLIMIT_NOFILE","hard":10,"soft":5}]},
         "root":{"path":"rootfs","readonly":true},
         "linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/var/run/netns/x"}],
                  "resources":{"memory":{"limit":1048576},"devices":[{"allow":false,"access":"rwm"}]},
                  "seccomp":{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}}}
        """
        let spec = try JSONDecoder().decode(Spec.self, from: Data(json.utf8))
        XCTAssertEqual(spec.process?.user.additionalGids, [3])
        XCTAssertEqual(spec.process?.rlimits?.first?.soft, 5)
        XCTAssertEqual(spec.linux?.namespaces?[1].path, "/var/run/netns/x")
        XCTAssertEqual(spec.linux?.resources?.memory?.limit, 1_048_576)
        XCTAssertEqual(spec.linux?.seccomp?.syscalls?.first?.errnoRet, 1)
        let again = try JSONDecoder().decode(Spec.self, from: JSONEncoder().encode(spec))
        XCTAssertEqual(again, spec)
        let text = String(decoding: try JSONEncoder().encode(spec), as: UTF8.self)
        XCTAssertFalse(text.contains("hostname"), "absent fields must stay absent")
    }

    func testMissingRequiredFieldIsAnError() {
        let json = #"{"ociVersion":"1.0.2","process":{"args":["sh"],"cwd":"/"}}"#
        XCTAssertThrowsError(try JSONDecoder().decode(Spec.self, from: Data(json.utf8)))
    }

    func testStateUsesSpecStatusNames() throws {
        let s = State(id: "a", status: .created, pid: 42, bundle: "/b")
        let text = String(decoding: try JSONEncoder().encode(s), as: UTF8.self)
        XCTAssertTrue(text.contains(#""status":"created""#))
        XCTAssertTrue(text.contains(#""pid":42"#))
    }
}
