import BerthHTTP
import XCTest

final class ListenAddressTests: XCTestCase {
    func testParsesDockerHostForms() throws {
        XCTAssertEqual(try ListenAddress.parse("unix:///run/x.sock"), .unix(path: "/run/x.sock"))
        XCTAssertEqual(try ListenAddress.parse("unix://"), .unix(path: "/run/berth/berth.sock"))
        XCTAssertEqual(try ListenAddress.parse("tcp://127.0.0.1:2375"), .tcp(host: "127.0.0.1", port: 2375))
        XCTAssertEqual(try ListenAddress.parse("tcp://:4243"), .tcp(host: "0.0.0.0", port: 4243))
        XCTAssertEqual(try ListenAddress.parse("tcp://localhost"), .tcp(host: "localhost", port: 2375))
        XCTAssertEqual(try ListenAddress.parse("tcp://[::1]:5000"), .tcp(host: "::1", port: 5000))
        XCTAssertEqual(ListenAddress.tcp(host: "::1", port: 5000).description, "tcp://[::1]:5000")
    }

    func testRejectsWhatItCannotServe() {
        XCTAssertThrowsError(try ListenAddress.parse("fd://"))
        XCTAssertThrowsError(try ListenAddress.parse("unix://relative.sock"))
        XCTAssertThrowsError(try ListenAddress.parse("tcp://host:99999"))
        XCTAssertThrowsError(try ListenAddress.parse("tcp://host:2375/path"))
        XCTAssertThrowsError(try ListenAddress.parse("/var/run/docker.sock"))
    }
}
