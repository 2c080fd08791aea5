import BerthCgroups
import XCTest

final class CgroupPathTests: XCTestCase {
    func testAbsolutePathIsRelativeToHierarchyRoot() throws {
        XCTAssertEqual(try CgroupPath.resolve("/a//b/./c/", containerID: "x"), .absolute("/a/b/c"))
        XCTAssertEqual(try CgroupPath.resolve("/a/b", containerID: "x").inHierarchy(ownCgroup: "/own"), "/a/b")
    }

    func testRelativePathIsBelowOwnCgroup() throws {
        let path = try CgroupPath.resolve("pods/c1", containerID: "x")
        XCTAssertEqual(path, .relative("pods/c1"))
        XCTAssertEqual(path.inHierarchy(ownCgroup: "/user.slice/session-1.scope"), "/user.slice/session-1.scope/pods/c1")
        XCTAssertEqual(path.inHierarchy(ownCgroup: "/"), "/pods/c1")
        XCTAssertEqual(path.inHierarchy(ownCgroup: nil), "/pods/c1")
    }

    func testNilAndEmptyDefaultToBerthContainerID() throws {
        XCTAssertEqual(try CgroupPath.resolve(nil, containerID: "c1"), .absolute("/berth/c1"))
        XCTAssertEqual(try CgroupPath.resolve("", containerID: "c1"), .absolute("/berth/c1"))
        XCTAssertThrowsError(try CgroupPath.resolve(nil, containerID: "../etc"))
    }

    func testSystemdFormMapsToScopeUnderExpandedSlice() throws {
        XCTAssertEqual(try CgroupPath.resolve("system.slice:docker:abc", containerID: "x"),
                       .absolute("/system.slice/docker-abc.scope"))
        XCTAssertEqual(try CgroupPath.resolve("kubepods-besteffort-pod12.slice:cri-containerd:abc", containerID: "x"),
                       .absolute("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/cri-containerd-abc.scope"))
        XCTAssertEqual(try CgroupPath.resolve(":berth:abc", containerID: "x"), .absolute("/system.slice/berth-abc.scope"))
        XCTAssertEqual(try CgroupPath.resolve("-.slice:berth:abc", containerID: "x"), .absolute("/berth-abc.scope"))
        XCTAssertEqual(try CgroupPath.resolve("machine.slice::abc", containerID: "x"), .absolute("/machine.slice/abc.scope"))
        XCTAssertEqual(try CgroupPath.resolve("a-b.slice:p:child.slice", containerID: "x"), .absolute("/a.slice/a-b.slice/child.slice"))
    }

    func testInvalidSystemdSlicesAreRejected() {
        for bad in ["notaslice:p:n", "a--b.slice:p:n", "-a.slice:p:n", "a-.slice:p:n", ".slice:p:n", "system.slice:p:", "system.slice:p/q:n"] {
            XCTAssertThrowsError(try CgroupPath.resolve(bad, containerID: "x"), bad) { error in
                XCTAssertEqual((error as? CgroupError)?.code, .invalidArgument)
            }
        }
    }

    func testRootAndOwnCgroupAreRejected() {
        for bad in ["/", "//", "/.", ".", "./"] {
            XCTAssertThrowsError(try CgroupPath.resolve(bad, containerID: "x"), bad)
        }
    }

    func testDotDotIsRejectedEverywhere() {
        for bad in ["/a/../b", "../escape", "a/..", "/..", "system.slice:..:n", "system.slice:p:.."] {
            XCTAssertThrowsError(try CgroupPath.resolve(bad, containerID: "x"), bad) { error in
                XCTAssertTrue((error as? CgroupError)?.message.contains("..") == true, "\(error)")
            }
        }
    }
}
