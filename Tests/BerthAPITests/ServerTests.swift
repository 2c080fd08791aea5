import Foundation
import Glibc
import NIOCore
import NIOHTTP1
import Synchronization
import BerthTestSupport
import XCTest

@testable import BerthAPI

/// The server in-process on a temporary unix socket, driven with hand-written HTTP.
final class ServerTests: XCTestCase {
    struct UploadSummary: Codable {
        var bytes: Int
        var sum: Int
        var text: String
    }

    struct FakeSystem: SystemInfoProvider {
        func version() async throws -> EngineVersion {
            EngineVersion(buildTime: "2025-05-30T12:04:43.000000000Z", toolchain: "swift6", kernelVersion: "6.1.0")
        }

        func info() async throws -> EngineInfo {
            var info = EngineInfo(
                id: "test-id", name: "host", dataRoot: "/var/lib/berth",
                host: HostFacts(
                    kernelVersion: "6.1.0", architecture: "x86_64", hostname: "host", operatingSystem: "Test OS",
                    osVersion: "1", cpus: 2, memoryBytes: 1 << 30, cgroupVersion: "2"))
            info.containers = .init(running: 1, paused: 0, stopped: 2)
            info.runtimes = [.init(name: "berth-runtime", path: "/usr/bin/berth-runtime")]
            info.defaultRuntime = "berth-runtime"
            return info
        }
    }

    private var server: TestServer!
    private let uploadLatch = Latch()
    private let written = Counter()
    private let streamsEnded = Counter()
    private let inboundAfterFinish = Counter()
    private let lateInbound = Counter()
    private let idleHijacksEnded = Counter()

    override func setUpWithError() throws {
        server = try TestServer { router in
            SystemRoutes(provider: FakeSystem()).register(on: &router)
            router.post("/upload") { request in
                var bytes = 0
                var sum = 0
                var text = ""
                for try await chunk in request.body {
                    bytes += chunk.readableBytes
                    chunk.withUnsafeReadableBytes { raw in
                        var s = 0
                        for b in raw { s &+= Int(b) }
                        sum = (sum + s) % 1_000_003
                    }
                    if text.utf8.count < 64 { text += String(buffer: chunk.getSlice(at: chunk.readerIndex, length: min(64, chunk.readableBytes))!) }
                }
                return try .json(UploadSummary(bytes: bytes, sum: sum, text: String(text.prefix(64))))
            }
            router.post("/ignore-body") { _ in .text("ignored") }
            let latch = uploadLatch
            router.post("/slow-upload") { request in
                await latch.wait()
                var bytes = 0
                for try await chunk in request.body { bytes += chunk.readableBytes }
                return .text("\(bytes)")
            }
            let written = self.written
            let streamsEnded = self.streamsEnded
            let inboundAfterFinish = self.inboundAfterFinish
            let lateInbound = self.lateInbound
            let idleHijacksEnded = self.idleHijacksEnded
            router.post("/late-reader") { _ in
                .hijack { stream in
                    try? await Task.sleep(for: .milliseconds(200))  // the client is gone by now
                    for await chunk in stream.inbound { lateInbound.add(chunk.readableBytes) }
                    lateInbound.add(1_000_000)  // the end was seen
                }
            }
            router.post("/hijack-early") { _ in
                // Hijacks before the request body has arrived; the server drains it first.
                .hijack { stream in
                    for await chunk in stream.inbound { try await stream.write(chunk) }
                }
            }
            router.post("/idle") { _ in
                .hijack { _ in
                    defer { idleHijacksEnded.add(1) }
                    try await Task.sleep(for: .seconds(60))
                }
            }
            router.post("/half-close") { _ in
                .hijack { stream in
                    try await stream.write(Array("out\n".utf8))
                    await stream.finish()  // the client reads EOF but may still send
                    for await chunk in stream.inbound { inboundAfterFinish.add(chunk.readableBytes) }
                }
            }
            router.get("/events") { _ in
                .stream(contentType: "application/json") { out in
                    defer { streamsEnded.add(1) }
                    try await out.writeJSON(["status": "start"])
                    while true { try await Task.sleep(for: .seconds(60)) }
                }
            }
            router.get("/firehose") { _ in
                .hijack { stream in
                    let chunk = [UInt8](repeating: 0x61, count: 64 << 10)
                    for _ in 0..<256 {  // 16 MiB
                        try await stream.write(chunk)
                        written.add(chunk.count)
                    }
                }
            }
            router.get("/echo/{word}") { request in
                .text("\(request.parameter("word")) v\(request.apiVersion) all=\(request.query.bool("all"))")
            }
            router.get("/fail") { _ in throw APIError.conflict("name is in use") }
            router.get("/crash") { _ in throw TestFailure("boom") }
            router.get("/stream") { request in
                let count = try request.query.int("n") ?? 3
                return .stream(contentType: "application/json") { out in
                    for i in 0..<count { try await out.writeJSON(["n": i]) }
                }
            }
            router.post("/hijack") { request in
                // Like exec start: the JSON body comes first, then the connection is hijacked.
                let options = try await request.body.collect(upTo: 1024)
                return .hijack { stream in
                    try await stream.write(Array("body:\(String(buffer: options))\n".utf8))
                    for await chunk in stream.inbound {
                        try await stream.write(chunk)
                    }
                    try await stream.write(Array("bye\n".utf8))
                }
            }
        }
    }

    override func tearDownWithError() throws {
        try server?.stop()
        server = nil
    }

    func testKeepAliveServesTwoRequestsOnOneConnection() throws {
        let client = try server.connect()
        try client.send("GET /v1.45/echo/one?all=1 HTTP/1.1\r\nHost: berth\r\n\r\n")
        let first = try client.readResponse()
        XCTAssertEqual(first.status, 200)
        XCTAssertEqual(first.text, "one v1.45 all=true")
        try client.send("GET /echo/two HTTP/1.1\r\nHost: berth\r\n\r\n")
        let second = try client.readResponse()
        XCTAssertEqual(second.text, "two v1.47 all=false")
        XCTAssertNil(second.header("Connection"))
    }

    func testPipelinedRequestsAreAnsweredInOrder() throws {
        let client = try server.connect()
        try client.send("GET /echo/a HTTP/1.1\r\nHost: x\r\n\r\nGET /echo/b HTTP/1.1\r\nHost: x\r\n\r\nGET /echo/c HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(try client.readResponse().text, "a v1.47 all=false")
        XCTAssertEqual(try client.readResponse().text, "b v1.47 all=false")
        XCTAssertEqual(try client.readResponse().text, "c v1.47 all=false")
    }

    func testConnectionCloseIsHonoured() throws {
        let client = try server.connect()
        try client.send("GET /echo/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let response = try client.readResponse()
        XCTAssertEqual(response.header("Connection"), "close")
        XCTAssertTrue(try client.isClosedByServer())
    }

    func testChunkedUploadArrivesWhole() throws {
        let client = try server.connect()
        try client.send("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in ["hello ", "chunked ", "world"] {
            try client.send(String(piece.utf8.count, radix: 16) + "\r\n" + piece + "\r\n")
            usleep(20_000)
        }
        try client.send("0\r\n\r\n")
        let response = try client.readResponse()
        XCTAssertEqual(response.status, 200)
        let summary = try JSONDecoder().decode(UploadSummary.self, from: Data(response.body))
        XCTAssertEqual(summary.text, "hello chunked world")
        XCTAssertEqual(summary.bytes, 19)
        // The connection is still good after a chunked body.
        try client.send("GET /echo/after HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(try client.readResponse().text, "after v1.47 all=false")
    }

    func testLargeUploadThroughBackPressureKeepsEveryByte() throws {
        let size = 8 << 20
        var body = [UInt8](repeating: 0, count: size)
        var expected = 0
        for i in 0..<size {
            body[i] = UInt8(truncatingIfNeeded: i &* 31 &+ 7)
            expected &+= Int(body[i])
        }
        expected %= 1_000_003
        let client = try server.connect()
        try client.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: \(size)\r\n\r\n")
        try client.send(body)
        let summary = try JSONDecoder().decode(UploadSummary.self, from: Data(try client.readResponse().body))
        XCTAssertEqual(summary.bytes, size)
        XCTAssertEqual(summary.sum, expected)
    }

    func testSlowBodyConsumerStopsTheServerReading() throws {
        let size = 16 << 20
        let body = [UInt8](repeating: 0x62, count: size)
        let client = try server.connect()
        try client.send("POST /slow-upload HTTP/1.1\r\nHost: x\r\nContent-Length: \(size)\r\n\r\n")
        var sent = 0
        for _ in 0..<20 {
            sent += client.sendAvailable(body, from: sent)
            usleep(10_000)
        }
        // Socket buffers plus the server's few buffered reads: far less than the whole body.
        XCTAssertLessThan(sent, 2 << 20, "the server kept reading a body nobody consumed")
        uploadLatch.open()
        while sent < size {
            let n = client.sendAvailable(body, from: sent)
            if n == 0 { usleep(1_000) }
            sent += n
        }
        XCTAssertEqual(try client.readResponse().text, "\(size)")
    }

    func testHijackedWritesWaitForASlowReader() throws {
        let client = try server.connect()
        try client.send("GET /firehose HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        XCTAssertEqual(try client.readResponse().status, 101)
        usleep(300_000)
        XCTAssertLessThan(written.value, 2 << 20, "writes went on while nobody read")
        XCTAssertEqual(try client.readUntilClose().count, 16 << 20)
        XCTAssertEqual(written.value, 16 << 20)
    }

    func testUnreadBodyIsDrainedAndConnectionKept() throws {
        let client = try server.connect()
        let body = String(repeating: "z", count: 300_000)
        try client.send("POST /ignore-body HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body)
        XCTAssertEqual(try client.readResponse().text, "ignored")
        try client.send("GET /echo/next HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(try client.readResponse().text, "next v1.47 all=false")
    }

    func testHijackEchoesRawBytesUntilClientHalfCloses() throws {
        let client = try server.connect()
        // Bytes sent right behind the request, before any answer, must survive the hand-over.
        try client.send(
            "POST /v1.47/hijack HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                + "Content-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"Tty\":false}early;")
        let head = try client.readResponse()
        XCTAssertEqual(head.statusLine, "HTTP/1.1 101 UPGRADED")
        XCTAssertEqual(head.header("Connection"), "Upgrade")
        XCTAssertEqual(head.header("Upgrade"), "tcp")
        XCTAssertEqual(head.header("Content-Type"), "application/vnd.docker.raw-stream")
        XCTAssertEqual(head.header("Api-Version"), "1.47")
        XCTAssertNil(head.header("Content-Length"))
        XCTAssertNil(head.header("Transfer-Encoding"))

        XCTAssertEqual(try client.readLine(), "body:{\"Tty\":false}")
        XCTAssertEqual(String(decoding: try client.read(exactly: 6), as: UTF8.self), "early;")
        try client.send("ping\n")
        XCTAssertEqual(try client.readLine(), "ping")
        let binary: [UInt8] = [0, 1, 2, 255, 13, 10]
        try client.send(binary)
        XCTAssertEqual(try client.read(exactly: binary.count), binary)

        client.shutdownWrite()  // like the end of `docker exec -i` stdin
        XCTAssertEqual(try client.readLine(), "bye")
        XCTAssertTrue(try client.isClosedByServer())
    }

    func testHijackAnsweredBeforeTheBodyArrivesWaitsForIt() throws {
        let client = try server.connect()
        try client.send("POST /hijack-early HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 10\r\n\r\n")
        usleep(50_000)
        try client.send("0123456789raw")  // the body, then stream bytes in the same packet
        XCTAssertEqual(try client.readResponse().status, 101)
        XCTAssertEqual(String(decoding: try client.read(exactly: 3), as: UTF8.self), "raw")
        try client.send("more")
        XCTAssertEqual(String(decoding: try client.read(exactly: 4), as: UTF8.self), "more")
        client.shutdownWrite()
        XCTAssertTrue(try client.isClosedByServer())
    }

    func testHijackWithoutUpgradeHeaderAnswers200RawStream() throws {
        let client = try server.connect()
        try client.send("POST /hijack HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        let head = try client.readResponse(hijacked: true)
        XCTAssertEqual(head.statusLine, "HTTP/1.1 200 OK")
        XCTAssertEqual(head.header("Content-Type"), "application/vnd.docker.raw-stream")
        XCTAssertNil(head.header("Upgrade"))
        XCTAssertEqual(try client.readLine(), "body:{}")
        try client.send("abc\n")
        XCTAssertEqual(try client.readLine(), "abc")
        client.shutdownWrite()
        XCTAssertEqual(try client.readLine(), "bye")
    }

    func testServerHalfCloseLeavesClientSendingSide() throws {
        let client = try server.connect()
        try client.send("POST /half-close HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n")
        XCTAssertEqual(try client.readResponse().status, 101)
        XCTAssertEqual(try client.readLine(), "out")
        XCTAssertTrue(try client.isClosedByServer(), "EOF after the server's finish()")
        try client.send("still talking")
        client.shutdownWrite()
        for _ in 0..<200 where inboundAfterFinish.value < 13 { usleep(10_000) }
        XCTAssertEqual(inboundAfterFinish.value, 13)
    }

    func testBytesSentJustBeforeADisconnectStillReachTheRoute() throws {
        var client: RawClient? = try server.connect()
        try client!.send("POST /late-reader HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        XCTAssertEqual(try client!.readResponse().status, 101)
        try client!.send("last words")
        client = nil  // full close, not a half-close
        for _ in 0..<300 where lateInbound.value < 1_000_000 { usleep(10_000) }
        XCTAssertEqual(lateInbound.value, 1_000_010)
    }

    func testDisconnectCancelsAnIdleHijackedRoute() throws {
        var client: RawClient? = try server.connect()
        try client!.send("POST /idle HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        XCTAssertEqual(try client!.readResponse().status, 101)
        client = nil
        for _ in 0..<200 where idleHijacksEnded.value == 0 { usleep(10_000) }
        XCTAssertEqual(idleHijacksEnded.value, 1, "the route's task was not cancelled")
    }

    func testExpectContinueGetsAnInterimResponse() throws {
        let client = try server.connect()
        try client.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        XCTAssertEqual(try client.readLine(), "HTTP/1.1 100 Continue")
        XCTAssertEqual(try client.readLine(), "")
        try client.send("12345")
        let response = try client.readResponse()
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(try JSONDecoder().decode(UploadSummary.self, from: Data(response.body)).bytes, 5)
    }

    func testStreamingResponseIsChunked() throws {
        let client = try server.connect()
        try client.send("GET /stream?n=4 HTTP/1.1\r\nHost: x\r\n\r\n")
        let response = try client.readResponse()
        XCTAssertEqual(response.header("Transfer-Encoding"), "chunked")
        XCTAssertEqual(response.header("Content-Type"), "application/json")
        XCTAssertEqual(response.text, "{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n")
        try client.send("GET /echo/again HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(try client.readResponse().text, "again v1.47 all=false")
    }

    func testClientDisconnectCancelsStreamingRoute() throws {
        var client: RawClient? = try server.connect()
        try client!.send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(try client!.readLine(), "HTTP/1.1 200 OK")
        client = nil  // closes the socket
        for _ in 0..<200 where streamsEnded.value == 0 { usleep(10_000) }
        XCTAssertEqual(streamsEnded.value, 1, "the route's task was not cancelled")
    }

    func testShutdownEndsOpenStreams() throws {
        let client = try server.connect()
        try client.send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(try client.readLine(), "HTTP/1.1 200 OK")
        let started = ContinuousClock.now
        try server.stop()
        server = nil
        XCTAssertLessThan(ContinuousClock.now - started, .milliseconds(400), "shutdown waited for the grace period")
        XCTAssertEqual(streamsEnded.value, 1)
        _ = try client.readUntilClose()
    }

    func testErrorsAreDockerJSONWithCommonHeaders() throws {
        let client = try server.connect()
        let cases: [(String, Int, String)] = [
            ("GET /nope", 404, "{\"message\":\"page not found\"}\n"),
            ("DELETE /v1.47/echo/x", 405, "{\"message\":\"method not allowed\"}\n"),
            ("GET /v1.99/version", 400, "{\"message\":\"client version 1.99 is too new. Maximum supported API version is 1.47\"}\n"),
            ("GET /v1.23/version", 400, "{\"message\":\"client version 1.23 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version\"}\n"),
            ("GET /fail", 409, "{\"message\":\"name is in use\"}\n"),
            ("GET /crash", 500, "{\"message\":\"boom\"}\n"),
        ]
        for (line, status, body) in cases {
            try client.send("\(line) HTTP/1.1\r\nHost: x\r\n\r\n")
            let response = try client.readResponse()
            XCTAssertEqual(response.status, status, line)
            XCTAssertEqual(response.text, body, line)
            XCTAssertEqual(response.header("Content-Type"), "application/json", line)
            XCTAssertEqual(response.header("Api-Version"), "1.47", line)
            XCTAssertEqual(response.header("Docker-Experimental"), "false", line)
            XCTAssertEqual(response.header("Ostype"), "linux", line)
            XCTAssertEqual(response.header("Server"), "Berth/0.1.0 (linux)", line)
        }
    }

    func testHeadPingHasDockersHeadersAndNoBody() throws {
        let client = try server.connect()
        try client.send("HEAD /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
        let head = try client.readResponse(head: true)
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.header("Content-Length"), "0")
        XCTAssertEqual(head.header("Api-Version"), "1.47")
        XCTAssertEqual(head.header("Builder-Version"), "1")
        XCTAssertEqual(head.header("Swarm"), "inactive")
        XCTAssertEqual(head.header("Ostype"), "linux")
        XCTAssertEqual(head.header("Cache-Control"), "no-cache, no-store, must-revalidate")
        XCTAssertEqual(head.header("Pragma"), "no-cache")
        // Nothing stray after the head: the next response parses cleanly.
        try client.send("GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
        let get = try client.readResponse()
        XCTAssertEqual(get.text, "OK")
        XCTAssertEqual(get.header("Content-Type"), "text/plain; charset=utf-8")
    }

    func testVersionAndInfoHaveDockersShape() throws {
        let client = try server.connect()
        try client.send("GET /v1.47/version HTTP/1.1\r\nHost: x\r\n\r\n")
        let version = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(try client.readResponse().body)) as? [String: Any])
        XCTAssertEqual(version["ApiVersion"] as? String, "1.47")
        XCTAssertEqual(version["MinAPIVersion"] as? String, "1.24")
        XCTAssertEqual(version["Os"] as? String, "linux")
        XCTAssertEqual((version["Platform"] as? [String: Any])?["Name"] as? String, "Berth")
        let engine = try XCTUnwrap((version["Components"] as? [[String: Any]])?.first)
        XCTAssertEqual(engine["Name"] as? String, "Engine")
        let details = try XCTUnwrap(engine["Details"] as? [String: String])
        XCTAssertEqual(Set(details.keys), ["ApiVersion", "Arch", "BuildTime", "Experimental", "GitCommit", "GoVersion", "KernelVersion", "MinAPIVersion", "Os"])

        try client.send("GET /info HTTP/1.1\r\nHost: x\r\n\r\n")
        let info = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(try client.readResponse().body)) as? [String: Any])
        XCTAssertEqual(info["Containers"] as? Int, 3)
        XCTAssertEqual(info["ContainersStopped"] as? Int, 2)
        XCTAssertEqual(info["Driver"] as? String, "overlay2")
        XCTAssertEqual(info["CgroupVersion"] as? String, "2")
        XCTAssertEqual(info["OSType"] as? String, "linux")
        XCTAssertEqual(info["DockerRootDir"] as? String, "/var/lib/berth")
        XCTAssertEqual((info["Swarm"] as? [String: Any])?["LocalNodeState"] as? String, "inactive")
        XCTAssertEqual((info["Runtimes"] as? [String: [String: String]])?["berth-runtime"]?["path"], "/usr/bin/berth-runtime")
        for key in ["ID", "Images", "DriverStatus", "Plugins", "MemoryLimit", "CpuCfsPeriod", "KernelVersion", "OperatingSystem",
                    "Architecture", "NCPU", "MemTotal", "Name", "ServerVersion", "DefaultRuntime", "SecurityOptions",
                    "Warnings", "RegistryConfig", "ContainerdCommit", "RuncCommit", "InitCommit", "CDISpecDirs"] {
            XCTAssertNotNil(info[key], key)
        }
    }

    func testMalformedRequestGets400AndClose() throws {
        let client = try server.connect()
        try client.send("THIS IS NOT HTTP\r\n\r\n")
        let response = try client.readResponse()
        XCTAssertEqual(response.status, 400)
        XCTAssertTrue(response.text.hasPrefix("{\"message\":"))
        XCTAssertTrue(try client.isClosedByServer())
    }

    func testSocketIsCreated0660AndRemovedOnShutdown() throws {
        var st = stat()
        XCTAssertEqual(lstat(server.path, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o660)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFSOCK)
        try server.stop()
        XCTAssertNotEqual(lstat(server.path, &st), 0, "socket file removed")
        XCTAssertThrowsError(try server.connect())
        server = nil
    }
}
