/// BerthAPI serves the Docker Engine REST API (as of API 1.47) over HTTP/1.1 with swift-nio.
///
/// It owns Docker's side of HTTP: the `/v1.NN` prefixes and version bounds, Docker's error
/// bodies and headers, the routes and their JSON. Serving itself (listening, routing, streamed
/// responses, hijacked connections) is BerthHTTP's, re-exported here. Each route is a thin
/// translation onto an `Engine` call (or the `SystemInfoProvider` berthd implements); the
/// engine never sees HTTP, and nothing here touches the runtime or the kernel.
///
/// Routes are async closures from `Request` to `Response`, registered by method and pattern:
///
///     var router = Router()
///     SystemRoutes(provider: engine).register(on: &router)          // /_ping, /version, /info
///     router.get("/containers/{id}/json") { request in
///         try .json(await engine.inspect(request.parameter("id")))  // throws APIError → {"message"}
///     }
///     router.get("/events") { request in
///         .stream(contentType: "application/json") { out in         // chunked, until return
///             for await event in engine.events() { try await out.writeJSON(event) }
///         }
///     }
///     router.post("/exec/{id}/start") { request in
///         let options = try await request.decodeJSON(ExecStartConfig.self)
///         return .hijack(contentType: "application/vnd.docker.raw-stream") { stream in
///             for await stdin in stream.inbound { ... }                // ends on half-close
///             try await stream.write(output)                           // waits for a slow reader
///         }
///     }
///     let server = APIServer(router: router, log: log)
///     try await server.listen(.unix(path: "/run/berth/berth.sock"))
///     ...
///     await server.shutdown()
public enum BerthAPI {
    /// The newest Docker Engine API version served; requests above it get 400.
    public static let maximumVersion: APIVersion = "1.47"
    /// The oldest version served, as dockerd's `MinAPIVersion`.
    public static let minimumVersion: APIVersion = "1.24"
    /// Berth's own version, shown as the engine version.
    public static let engineVersion = "0.1.0"
    /// The `Server` header, in dockerd's `Docker/<version> (<os>)` form.
    public static let serverHeader = "Berth/\(engineVersion) (linux)"
}
