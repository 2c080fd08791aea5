import NIOCore
import NIOHTTP1

/// Turns a request head and body into a response: routing, the handler, errors and common
/// headers as the `ServicePolicy` says. Runs in the request's task, off the event loop.
struct Responder: Sendable {
    let router: Router
    let log: ServerLog
    let policy: ServicePolicy
    let requestLogLevel: ServerLog.Level

    func respond(to head: HTTPRequestHead, body: RequestBody, remoteAddress: SocketAddress? = nil) async -> Response {
        let started = ContinuousClock.now
        var response: Response
        switch router.resolve(method: head.method, uri: head.uri) {
        case .failure(let error):
            response = policy.errorResponse(error)
        case .success(let match):
            let request = Request(
                method: head.method, path: match.path, pathParameters: match.pathParameters, query: match.query,
                headers: head.headers, body: body, prefix: match.prefix, wantsUpgrade: head.wantsUpgrade,
                remoteAddress: remoteAddress)
            do {
                response = try await match.handler(request)
            } catch {
                response = policy.errorResponse(error)
                if response.status.code >= 500 {
                    log.error("handler failed", [("method", "\(head.method)"), ("uri", head.uri), ("error", "\(error)")])
                }
            }
        }
        addCommonHeaders(&response.headers)
        log(requestLogLevel, "request", [
            ("method", "\(head.method)"), ("uri", head.uri), ("status", "\(response.status.code)"),
            ("duration", milliseconds(ContinuousClock.now - started)),
        ])
        return response
    }

    func addCommonHeaders(_ headers: inout HTTPHeaders) {
        for (name, value) in policy.commonHeaders() { headers.replaceOrAdd(name: name, value: value) }
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
