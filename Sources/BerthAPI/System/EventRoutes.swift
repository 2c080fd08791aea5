import BerthEngine
import BerthOS
import FoundationEssentials

/// `GET /events`: past events from `since`, then live ones until `until` or the client leaves.
public struct EventRoutes: Sendable {
    let engine: Engine

    public init(engine: Engine) { self.engine = engine }

    static let filterKeys: Set<String> = ["config", "container", "daemon", "event", "image", "label", "network",
                                          "node", "plugin", "scope", "secret", "service", "type", "volume"]

    public func register(on router: inout Router) {
        let engine = self.engine
        router.get("/events") { request in
            let filters = try Filters(parsing: request.query["filters"], allowed: Self.filterKeys)
            let since = try Self.time(request.query["since"], "since")
            let until = try Self.time(request.query["until"], "until")
            let events = await engine.subscribe(sinceNano: since, untilNano: until)
            return .stream(contentType: "application/json") { out in
                for await event in events where Self.matches(event, filters) {
                    try await out.writeJSON(DockerEvent(event))
                }
            }
        }
    }

    static func time(_ text: String?, _ name: String) throws(APIError) -> Int64? {
        guard let text, !text.isEmpty else { return nil }
        guard let nanos = Timestamp.nanoseconds(query: text, now: Timestamp.nowNanoseconds()) else {
            throw .badRequest("invalid value for \(name): \(text)")
        }
        return nanos
    }

    /// dockerd's rules: each key filters on its own, values of one key are alternatives.
    static func matches(_ e: EngineEvent, _ f: Filters) -> Bool {
        let name = e.attributes["name"] ?? ""
        func actor(_ type: String) -> (String) -> Bool {
            { e.type == type && (e.actorID == $0 || e.actorID.hasPrefix($0) || name == $0) }
        }
        return f.accepts("type") { $0 == e.type }
            && f.accepts("event") { e.action == $0 || e.action.hasPrefix($0 + ":") }
            && f.accepts("container", actor("container"))
            && f.accepts("volume", actor("volume"))
            && f.accepts("network", actor("network"))
            && f.accepts("daemon", actor("daemon"))
            && f.accepts("image") { want in
                e.attributes["image"] == want || (e.type == "image" && (e.actorID == want || name == want))
            }
            && f.accepts("scope") { $0 == "local" }
            && f.acceptsLabels(e.attributes)
    }
}

/// Docker's `events.Message`, with the deprecated `status`/`id`/`from` fields old clients read.
struct DockerEvent: Encodable {
    struct Actor: Encodable {
        var id: String
        var attributes: [String: String]
        enum CodingKeys: String, CodingKey { case id = "ID", attributes = "Attributes" }
    }

    var status: String?
    var id: String?
    var from: String?
    var type: String
    var action: String
    var actor: Actor
    var scope = "local"
    var time: Int64
    var timeNano: Int64

    enum CodingKeys: String, CodingKey {
        case status, id, from, type = "Type", action = "Action", actor = "Actor", scope, time, timeNano
    }

    init(_ e: EngineEvent) {
        if e.type == "container" || e.type == "image" {
            status = e.action
            id = e.actorID
            from = e.attributes["image"]
        }
        type = e.type
        action = e.action
        actor = Actor(id: e.actorID, attributes: e.attributes)
        time = e.timeNano / 1_000_000_000
        timeNano = e.timeNano
    }
}
