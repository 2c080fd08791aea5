import BerthNetlink
import BerthOS
import Foundation
import XCTest

final class NetworkNamespaceTests: NamespaceTestCase {
    func testCreatePinsANewNamespaceWithLoopbackUp() throws {
        let path = try makeNamespace("ns1")
        XCTAssertTrue(NetworkNamespace.exists(at: path))
        let links = try Netlink(namespace: path).links()
        XCTAssertEqual(links.map(\.name), ["lo"], "a new namespace has only loopback")
        XCTAssertEqual(links.first?.isUp, true)
        XCTAssertNil(links.first?.kind)
        // The real tool sees the same namespace.
        let lo = try ip(path, "link", "show", "lo")
        XCTAssertEqual((lo.first?["flags"] as? [String])?.contains("UP"), true)
        // It is not the test's own namespace.
        var own = stat(), pinned = stat()
        XCTAssertEqual(stat("/proc/thread-self/ns/net", &own), 0)
        XCTAssertEqual(stat(path, &pinned), 0)
        XCTAssertNotEqual(own.st_ino, pinned.st_ino)
    }

    func testCreatingOverAPinnedNamespaceFailsWithExists() throws {
        let path = try makeNamespace("ns1")
        assertNetlinkError(.exists, try NetworkNamespace.create(at: path))
        XCTAssertTrue(NetworkNamespace.exists(at: path), "the failed attempt must not unpin it")
    }

    func testCreateInAMissingDirectoryFailsClearly() throws {
        let path = directory + "/missing/ns1"
        XCTAssertThrowsError(try NetworkNamespace.create(at: path)) { error in
            let error = error as? NetlinkError
            XCTAssertEqual(error?.code, .notFound)
            XCTAssertTrue(error?.message.contains(self.directory + "/missing") == true, error?.message ?? "")
        }
        XCTAssertFalse(FileSystem.exists(path))
    }

    func testRemoveUnpinsAndUnlinksAndIgnoresAbsentPaths() throws {
        let path = try makeNamespace("ns1")
        NetworkNamespace.remove(at: path)
        XCTAssertFalse(NetworkNamespace.exists(at: path))
        XCTAssertFalse(FileSystem.exists(path))
        NetworkNamespace.remove(at: path)
        NetworkNamespace.remove(at: directory + "/never-there")
    }

    func testRunExecutesInsideTheNamespaceAndSysctlWritesAffectOnlyIt() throws {
        let path = try makeNamespace("ns1")
        let hostForwarding = try Sysctl.read("net.ipv4.ip_forward")
        let inside = try NetworkNamespace.run(in: path) { () throws -> String in
            try Sysctl.write("net.ipv4.ip_forward", hostForwarding == "1" ? "0" : "1")
            return try Sysctl.read("net.ipv4.ip_forward")
        }
        XCTAssertEqual(inside, hostForwarding == "1" ? "0" : "1")
        XCTAssertEqual(try Sysctl.read("net.ipv4.ip_forward"), hostForwarding, "the host's value must not change")
        // And the inside value stays with the namespace, as `sysctl` through nsenter sees it.
        let seen = try Command.output(path: "/usr/bin/nsenter",
                                      argv: ["nsenter", "--net=\(path)", "/bin/cat", "/proc/sys/net/ipv4/ip_forward"])
        XCTAssertEqual(String(decoding: seen, as: UTF8.self), inside + "\n")
    }

    func testRunRethrowsTheBodysErrorAndReportsAMissingNamespace() throws {
        let path = try makeNamespace("ns1")
        struct Boom: Error {}
        XCTAssertThrowsError(try NetworkNamespace.run(in: path) { () throws -> Int in throw Boom() }) {
            XCTAssertTrue($0 is Boom)
        }
        XCTAssertThrowsError(try NetworkNamespace.run(in: directory + "/nope") { 1 }) {
            XCTAssertEqual(($0 as? NetlinkError)?.code, .notFound)
        }
        assertNetlinkError(.notFound, try Netlink(namespace: directory + "/nope"))
    }

    func testSysctlWriteToAnUnknownKeyFails() throws {
        let path = try makeNamespace("ns1")
        XCTAssertThrowsError(try NetworkNamespace.run(in: path) { try Sysctl.write("net.ipv4.conf.nope0.forwarding", "1") }) {
            XCTAssertEqual(($0 as? NetlinkError)?.code, .notFound)
        }
    }

    func testBindSocketServesTCPInsideTheNamespace() throws {
        let path = try makeNamespace("ns1")
        let listener = try NetworkNamespace.bindSocket(in: path, type: Int32(SOCK_STREAM.rawValue),
                                                       address: "127.0.0.11", port: 53)
        defer { close(listener) }
        // ss inside the namespace sees the listener; the host's namespace does not have it.
        let out = try Command.output(path: "/usr/bin/nsenter",
                                     argv: ["nsenter", "--net=\(path)", "/usr/bin/ss", "-Htln"])
        XCTAssertTrue(String(decoding: out, as: UTF8.self).contains("127.0.0.11:53"),
                      String(decoding: out, as: UTF8.self))
        let flags = fcntl(listener, F_GETFD)
        XCTAssertNotEqual(flags & FD_CLOEXEC, 0)
        assertNetlinkError(.invalidArgument,
                           try NetworkNamespace.bindSocket(in: path, type: Int32(SOCK_DGRAM.rawValue), address: "nope", port: 1))
    }
}
