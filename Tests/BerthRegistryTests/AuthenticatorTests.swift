import NIOCore
import XCTest

@testable import BerthRegistry

final class AuthenticatorTests: XCTestCase {
    // bcrypt (cost 5) of "s3cret", as htpasswd -B writes it ($2y$) and as libxcrypt does ($2b$).
    static let file = """
        # users
        alice:$2y$05$cnsZtpdoTFwQ.vqL/cH31erU2uHtQWLO/UFuZyKUwQaoHOObO3dhS
        bob:$2b$05$cnsZtpdoTFwQ.vqL/cH31erU2uHtQWLO/UFuZyKUwQaoHOObO3dhS
        carol:{SHA}ZOmGNRyyShg3B7n2fjmWq37I6Tw=
        """

    func testBcryptHashesFromHtpasswdVerify() async {
        var limits = Authenticator.Limits()
        limits.failuresBeforeBackoff = 100
        let auth = Authenticator(htpasswdText: Self.file, limits: limits)
        var outcome = await auth.verify(user: "alice", password: "s3cret", client: "a")
        XCTAssertEqual(outcome, .accepted)
        outcome = await auth.verify(user: "alice", password: "s3cret", client: "a")
        XCTAssertEqual(outcome, .accepted, "again, from the cache")
        outcome = await auth.verify(user: "bob", password: "s3cret", client: "a")
        XCTAssertEqual(outcome, .accepted)
        for (user, password) in [("alice", "s3cret "), ("alice", ""), ("dave", "s3cret"), ("carol", "s3cret")] {
            outcome = await auth.verify(user: user, password: password, client: "a")
            XCTAssertEqual(outcome, .rejected, "\(user):\(password) (carol: only bcrypt is accepted)")
        }
    }

    func testAuthorizationHeaderIsCheckedAndRefusalCarriesTheChallenge() async throws {
        let auth = Authenticator(htpasswdText: Self.file, realm: "test")
        try await auth.check("Basic YWxpY2U6czNjcmV0", client: "a")  // alice:s3cret
        for header in [nil, "Basic YWxpY2U6d3Jvbmc=", "Bearer x", "Basic !!!"] as [String?] {
            do {
                try await auth.check(header, client: "b")
                XCTFail("accepted \(header ?? "nothing")")
            } catch {
                XCTAssertEqual(error.code, .unauthorized)
                XCTAssertEqual(error.status, .unauthorized)
                XCTAssertEqual(error.headers.first(name: "WWW-Authenticate"), "Basic realm=\"test\"")
            }
        }
    }

    func testUnknownUsersAreComparedWithADummyHashOfTheUsualCost() {
        XCTAssertEqual(Authenticator.usualCost(["$2y$05$x", "$2y$10$y", "$2y$10$z", "{SHA}abc"]), 10)
        XCTAssertEqual(Authenticator.usualCost([]), 5, "htpasswd's default")
        let dummy = Authenticator.makeDummyHash(cost: 6)
        XCTAssertTrue(dummy.hasPrefix("$2b$06$"), dummy)
        XCTAssertEqual(dummy.count, 60, dummy)
        XCTAssertFalse(Authenticator.bcryptMatches(password: "", hash: dummy))
    }

    func testFailuresFromOneClientBackOffWithoutHoldingBackOthersOrVerifiedCredentials() async throws {
        var limits = Authenticator.Limits()
        limits.failuresBeforeBackoff = 3
        limits.backoff = .seconds(30)
        let auth = Authenticator(htpasswdText: Self.file, limits: limits)
        var outcome = await auth.verify(user: "alice", password: "s3cret", client: "shared")
        XCTAssertEqual(outcome, .accepted)
        for i in 0..<3 {
            outcome = await auth.verify(user: i == 0 ? "mallory" : "alice", password: "guess\(i)", client: "shared")
            XCTAssertEqual(outcome, .rejected)
        }
        outcome = await auth.verify(user: "alice", password: "guess", client: "shared")
        guard case .throttled(let wait) = outcome else { return XCTFail("\(outcome)") }
        XCTAssertGreaterThan(wait, .seconds(25))
        outcome = await auth.verify(user: "bob", password: "s3cret", client: "shared")
        XCTAssertNotEqual(outcome, .accepted, "not verified yet: no hashing while the client waits")
        outcome = await auth.verify(user: "alice", password: "s3cret", client: "shared")
        XCTAssertEqual(outcome, .accepted, "verified before: no hashing needed")
        outcome = await auth.verify(user: "bob", password: "s3cret", client: "elsewhere")
        XCTAssertEqual(outcome, .accepted)

        do {
            try await auth.check("Basic Ym9iOndyb25n", client: "shared")  // bob:wrong
            XCTFail("accepted")
        } catch {
            XCTAssertEqual(error.code, .tooManyRequests)
            XCTAssertEqual(error.status, .tooManyRequests)
            XCTAssertNotNil(error.headers.first(name: "Retry-After").flatMap(Int.init))
        }
    }

    func testVerifiedCredentialsAreTrustedOnlyForTheCacheLifetime() async throws {
        var limits = Authenticator.Limits()
        limits.cacheLifetime = .milliseconds(50)
        limits.failuresBeforeBackoff = 0
        limits.backoff = .seconds(30)
        let auth = Authenticator(htpasswdText: Self.file, limits: limits)
        var outcome = await auth.verify(user: "alice", password: "s3cret", client: "c")
        XCTAssertEqual(outcome, .accepted)
        outcome = await auth.verify(user: "alice", password: "wrong", client: "c")
        XCTAssertEqual(outcome, .rejected)
        outcome = await auth.verify(user: "alice", password: "s3cret", client: "c")
        XCTAssertEqual(outcome, .accepted, "cached")
        try await Task.sleep(for: .milliseconds(100))
        outcome = await auth.verify(user: "alice", password: "s3cret", client: "c")
        guard case .throttled = outcome else { return XCTFail("expired from the cache, so hashed again: \(outcome)") }
    }

    func testHashingBeyondItsPoolAndQueueIsRefusedNotQueued() async {
        // A slow hash, one thread and no queue: checks arriving while one runs are turned away.
        let slow = Authenticator.makeDummyHash(cost: 11)
        var limits = Authenticator.Limits()
        limits.hashingThreads = 1
        limits.hashingQueue = 0
        limits.failuresBeforeBackoff = 100
        let auth = Authenticator(htpasswdText: "alice:\(slow)\n", limits: limits)
        let outcomes = await withTaskGroup(of: Authenticator.Outcome.self) { group in
            for i in 0..<6 { group.addTask { await auth.verify(user: "alice", password: "guess", client: "c\(i)") } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        XCTAssertGreaterThanOrEqual(outcomes.filter { $0 == .rejected }.count, 1)
        XCTAssertGreaterThanOrEqual(outcomes.filter { if case .throttled = $0 { true } else { false } }.count, 1, "\(outcomes)")
    }

    func testClientsAreKeyedByAddressAndIPv6ByItsSlash64() throws {
        XCTAssertEqual(Authenticator.clientKey(try SocketAddress(ipAddress: "192.0.2.7", port: 4000)), "192.0.2.7")
        XCTAssertEqual(
            Authenticator.clientKey(try SocketAddress(ipAddress: "2001:db8:1:2:aaaa::1", port: 1)),
            Authenticator.clientKey(try SocketAddress(ipAddress: "2001:db8:1:2:bbbb::9", port: 2)))
        XCTAssertNotEqual(
            Authenticator.clientKey(try SocketAddress(ipAddress: "2001:db8:1:2::1", port: 1)),
            Authenticator.clientKey(try SocketAddress(ipAddress: "2001:db8:1:3::1", port: 1)))
        XCTAssertEqual(Authenticator.clientKey(nil), "local")
    }
}
