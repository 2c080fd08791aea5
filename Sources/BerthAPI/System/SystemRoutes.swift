import NIOHTTP1

/// `/_ping`, `/version` and `/info`: the routes every docker client calls first.
public struct SystemRoutes: Sendable {
    let provider: any SystemInfoProvider
    let experimental: Bool

    public init(provider: any SystemInfoProvider, experimental: Bool = false) {
        self.provider = provider
        self.experimental = experimental
    }

    public func register(on router: inout Router) {
        router.get("/_ping") { request in Self.ping(request) }
        router.head("/_ping") { request in Self.ping(request) }
        let provider = self.provider
        let experimental = self.experimental
        router.get("/version") { _ in
            try .json(DockerVersion(try await provider.version()))
        }
        router.get("/info") { _ in
            try .json(DockerInfo(try await provider.info(), experimental: experimental))
        }
    }

    /// dockerd's pingHandler: `OK`, never cached, with the headers clients negotiate from
    /// (`Api-Version` comes with every response).
    static func ping(_ request: Request) -> Response {
        var response = request.method == .HEAD
            ? Response(headers: ["Content-Length": "0"], body: .empty)
            : Response(body: .bytes(.init(string: "OK")))
        response.headers.add(name: "Cache-Control", value: "no-cache, no-store, must-revalidate")
        response.headers.add(name: "Pragma", value: "no-cache")
        response.headers.replaceOrAdd(name: "Builder-Version", value: "1")
        response.headers.replaceOrAdd(name: "Swarm", value: "inactive")
        response.headers.replaceOrAdd(name: "Content-Type", value: "text/plain; charset=utf-8")
        return response
    }
}
