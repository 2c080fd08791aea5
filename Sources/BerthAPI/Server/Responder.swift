import NIOCore
import NIOHTTP1

/// Turns a request head and body into a response: routing, the handler, errors as Docker's
/// JSON, and dockerd's common headers. Runs in the request's task, off the event loop.
struct Responder: Sendable {
    let router: Router
    let log: APILog
    let experimental: Bool

    func respond(to head: HTTPRequestHead, body: RequestBody) async -> Response {
        let started = ContinuousClock.now
        var response: Response
        switch router.resolve(method: head.method, uri: head.uri) {
        case .failure(let error):
            response = .error(error)
        case .success(let match):
            let request = Request(
                method: head.method, path: match.path, pathParameters: match.pathParameters, query: match.query,
                headers: head.headers, body: body, apiVersion: match.apiVersion, wantsUpgrade: head.wantsUpgrade)
            do {
                response = try await match.handler(request)
            } catch let error as APIError {
                response = .error(error)
            } catch {
                log.error("handler failed", [("method", "\(head.method)"), ("uri", head.uri), ("error", "\(error)")])
                response = .error(.internalError("\(error)"))
            }
        }
        addCommonHeaders(&response.headers)
        log.debug("request", [
            ("method", "\(head.method)"), ("uri", head.uri), ("status", "\(response.status.code)"),
            ("duration", milliseconds(ContinuousClock.now - started)),
        ])
        return response
    }

    /// The headers dockerd's middlewares put on every response (names as Go canonicalizes them).
    func addCommonHeaders(_ headers: inout HTTPHeaders) {
        headers.replaceOrAdd(name: "Api-Version", value: BerthAPI.maximumVersion.text)
        headers.replaceOrAdd(name: "Docker-Experimental", value: experimental ? "true" : "false")
        headers.replaceOrAdd(name: "Ostype", value: "linux")
        headers.replaceOrAdd(name: "Server", value: BerthAPI.serverHeader)
    }
}

/// `1.234ms`, for log lines.
func milliseconds(_ duration: Duration) -> String {
    let micros = duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000
    let fraction = String(micros % 1000)
    return "\(micros / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)ms"
}

extension HTTPRequestHead {
    /// `Connection: Upgrade` and an `Upgrade` header, as the docker client sends for attach
    /// and exec start.
    var wantsUpgrade: Bool {
        headers["Upgrade"].contains { !$0.isEmpty }
            && headers[canonicalForm: "Connection"].contains { $0.lowercased() == "upgrade" }
    }
}
