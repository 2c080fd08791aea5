import NIOHTTP1
import XCTest

@testable import BerthAPI

final class RouterTests: XCTestCase {
    private func router() -> Router {
        var r = Router(prefix: .dockerAPIVersion)
        r.get("/_ping") { _ in .text("OK") }
        r.head("/_ping") { _ in .text("") }
        r.get("/containers/json") { _ in .text("list") }
        r.get("/containers/{id}/json") { req in .text("inspect \(req.parameter("id"))") }
        r.post("/containers/{id}/start") { req in .text("start \(req.parameter("id"))") }
        r.get("/images/json") { _ in .text("images") }
        r.get("/images/{name:.*}/json") { req in .text("image \(req.parameter("name"))") }
        r.delete("/images/{name:.*}") { req in .text("rmi \(req.parameter("name"))") }
        return r
    }

    private func match(_ method: HTTPMethod, _ uri: String) throws -> Router.Match {
        try router().resolve(method: method, uri: uri).get()
    }

    private func failure(_ method: HTTPMethod, _ uri: String) -> APIError? {
        if case .failure(let error) = router().resolve(method: method, uri: uri) { return error }
        return nil
    }

    func testPathsMatchWithAndWithoutVersionPrefix() throws {
        let bare = try match(.GET, "/containers/abc/json")
        XCTAssertEqual(bare.pathParameters, ["id": "abc"])
        XCTAssertEqual(bare.apiVersion, BerthAPI.maximumVersion)
        XCTAssertEqual(bare.path, "/containers/abc/json")

        let prefixed = try match(.GET, "/v1.41/containers/abc/json")
        XCTAssertEqual(prefixed.pathParameters, ["id": "abc"])
        XCTAssertEqual(prefixed.apiVersion, "1.41")
        XCTAssertEqual(prefixed.apiVersion.text, "1.41")
        XCTAssertEqual(prefixed.path, "/containers/abc/json")
        XCTAssertEqual(prefixed.pattern, "/containers/{id}/json")
    }

    func testVersionAboveMaximumIsRejectedWithDockersMessage() {
        XCTAssertEqual(failure(.GET, "/v1.99/version")?.status, .notFound, "no /version route here: dockerd checks the version once a route matched")
        let tooNew = failure(.GET, "/v1.99/_ping")
        XCTAssertEqual(tooNew?.status, .badRequest)
        XCTAssertEqual(tooNew?.message, "client version 1.99 is too new. Maximum supported API version is 1.47")
    }

    func testVersionBelowMinimumIsRejectedWithDockersMessage() {
        let tooOld = failure(.GET, "/v1.12/_ping")
        XCTAssertEqual(tooOld?.status, .badRequest)
        XCTAssertEqual(
            tooOld?.message,
            "client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version")
    }

    func testVersionBoundsAreInclusive() throws {
        XCTAssertEqual(try match(.GET, "/v1.24/_ping").apiVersion, "1.24")
        XCTAssertEqual(try match(.GET, "/v1.47/_ping").apiVersion, "1.47")
    }

    func testUnknownPathIs404PageNotFound() {
        let error = failure(.GET, "/nope")
        XCTAssertEqual(error?.status, .notFound)
        XCTAssertEqual(error?.message, "page not found")
        XCTAssertEqual(failure(.GET, "/v1.47/containers/abc/json/extra")?.status, .notFound)
        XCTAssertEqual(failure(.GET, "/v1.47")?.status, .notFound)
    }

    func testKnownPathWithOtherMethodIs405() {
        let error = failure(.POST, "/containers/abc/json")
        XCTAssertEqual(error?.status, .methodNotAllowed)
        XCTAssertEqual(failure(.PUT, "/v1.47/_ping")?.status, .methodNotAllowed)
    }

    func testLiteralRouteRegisteredFirstWinsOverParameter() throws {
        XCTAssertEqual(try match(.GET, "/containers/json").pattern, "/containers/json")
        XCTAssertEqual(try match(.GET, "/images/json").pattern, "/images/json")
    }

    func testCatchAllParameterTakesSlashes() throws {
        XCTAssertEqual(try match(.GET, "/images/docker.io/library/busybox:latest/json").pathParameters["name"], "docker.io/library/busybox:latest")
        XCTAssertEqual(try match(.DELETE, "/v1.45/images/registry:5000/team/app").pathParameters["name"], "registry:5000/team/app")
        XCTAssertEqual(try match(.GET, "/images/json/json").pathParameters["name"], "json")
    }

    func testPathSegmentsArePercentDecodedAndQuerySplitOff() throws {
        let m = try match(.GET, "/v1.47/containers/my%20box/json?all=1&filters=%7B%22a%22%3A1%7D&x=a+b")
        XCTAssertEqual(m.pathParameters["id"], "my box")
        XCTAssertEqual(m.query["all"], "1")
        XCTAssertEqual(m.query["filters"], "{\"a\":1}")
        XCTAssertEqual(m.query["x"], "a b")
    }

    func testVersionLikeSegmentIsOnlyAPrefixWhenNumeric() throws {
        var r = Router(prefix: .dockerAPIVersion)
        r.get("/version") { _ in .text("v") }
        XCTAssertEqual(try r.resolve(method: .GET, uri: "/version").get().apiVersion, BerthAPI.maximumVersion)
        XCTAssertEqual(try r.resolve(method: .GET, uri: "/v1.30/version").get().apiVersion, "1.30")
    }

    func testAPIVersionComparesNumerically() {
        XCTAssertLessThan(APIVersion("1.9"), APIVersion("1.24"))
        XCTAssertLessThan(APIVersion("1.4"), APIVersion("1.47"))
        XCTAssertEqual(APIVersion("1.47"), APIVersion("1.47.0"))
        XCTAssertGreaterThan(APIVersion("2.0"), APIVersion("1.47"))
    }

    func testHandlerSeesParametersQueryAndVersion() async throws {
        var r = Router(prefix: .dockerAPIVersion)
        r.get("/containers/{id}/logs") { req in
            .text("\(req.parameter("id")) \(req.query.bool("follow")) \(req.apiVersion)")
        }
        let m = try r.resolve(method: .GET, uri: "/v1.44/containers/c1/logs?follow=True").get()
        let response = try await m.handler(Request(method: .GET, path: m.path, pathParameters: m.pathParameters, query: m.query, prefix: m.prefix))
        guard case .bytes(let buffer) = response.body else { return XCTFail("expected bytes") }
        XCTAssertEqual(String(buffer: buffer), "c1 true 1.44")
    }
}
