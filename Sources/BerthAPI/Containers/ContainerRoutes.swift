import BerthEngine
import BerthOS
import FoundationEssentials
import Glibc
import NIOCore
import NIOHTTP1

/// Container routes: a thin translation onto `Engine`.
public struct ContainerRoutes: Sendable {
    let engine: Engine

    public init(engine: Engine) { self.engine = engine }

    static let multiplexed = "application/vnd.docker.multiplexed-stream"
    static let raw = "application/vnd.docker.raw-stream"

    public func register(on router: inout Router) {
        let engine = self.engine

        // Containers.
        router.get("/containers/json") { request in
            let filters = try Filters(parsing: request.query["filters"], allowed: ContainerFilters.keys)
            let options = Engine.ListOptions(
                all: request.query.bool("all"), limit: try request.query.int("limit"), size: request.query.bool("size"),
                filters: try await mapped { try ContainerFilters(filters.values) })
            let rows = try await mapped { try await engine.list(options) }
            let now = Timestamp.nowNanoseconds()
            return try .json(rows.map { DockerContainerSummary($0, now: now) })
        }
        router.post("/containers/prune") { request in
            let values = try Filters(parsing: request.query["filters"], allowed: ContainerPruneFilters.keys).values
            let filters = try await mapped { try ContainerPruneFilters(values, now: Timestamp.nowNanoseconds()) }
            let pruned = await engine.prune(filters)
            return try .json(DockerContainerPruneResponse(containersDeleted: pruned.deleted, spaceReclaimed: pruned.reclaimed))
        }
        router.post("/containers/{id}/rename") { request in
            try await mapped { try await engine.rename(request.parameter("id"), to: request.query["name"] ?? "") }
            return .noContent()
        }
        router.post("/containers/{id}/update") { request in
            let change = try await request.decodeJSON(DockerContainerUpdate.self)
            let warnings = try await mapped { try await engine.update(request.parameter("id"), change) }
            return try .json(DockerContainerUpdateResponse(warnings: warnings))
        }
        router.post("/containers/{id}/restart") { request in
            let timeout = try request.query.int("t") ?? request.query.int("timeout")
            try await mapped { try await engine.restart(request.parameter("id"), timeout: timeout, signal: request.query["signal"]) }
            return .noContent()
        }
        router.post("/containers/create") { request in
            let body = try await request.decodeJSON(DockerContainerCreateRequest.self)
            let created = try await mapped { try await engine.create(name: request.query["name"], request: body) }
            return try .json(DockerCreateResponse(id: created.id, warnings: created.warnings), status: .created)
        }
        router.get("/containers/{id}/json") { request in
            let rec = try await mapped { try await engine.container(request.parameter("id")) }
            var inspect = DockerContainerInspect(rec, sandboxKey: rec.networkReady ? engine.sandboxPath(rec.id) : nil)
            let execs = await engine.execIDs(inspect.id)
            inspect.execIDs = execs.isEmpty ? nil : execs
            return try .json(inspect)
        }
        router.post("/containers/{id}/start") { request in
            try await orNotModified { try await engine.start(request.parameter("id")) }
        }
        router.post("/containers/{id}/stop") { request in
            let timeout = try request.query.int("t") ?? request.query.int("timeout")
            return try await orNotModified {
                try await engine.stop(request.parameter("id"), timeout: timeout, signal: request.query["signal"])
            }
        }
        router.post("/containers/{id}/kill") { request in
            try await orNotModified { try await engine.kill(request.parameter("id"), signal: request.query["signal"]) }
        }
        router.delete("/containers/{id}") { request in
            try await orNotModified {
                try await engine.remove(request.parameter("id"), force: request.query.bool("force"), volumes: request.query.bool("v"))
            }
        }
        router.post("/containers/{id}/wait") { request in
            let text = request.query["condition"].flatMap { $0.isEmpty ? nil : $0 } ?? "not-running"
            guard let condition = Engine.WaitCondition(rawValue: text) else {
                throw APIError.badRequest("invalid condition: \"\(text)\"")
            }
            let id = request.parameter("id")
            _ = try await mapped { try await engine.container(id) }
            return .stream(contentType: "application/json") { out in
                let code = try await mapped { try await engine.wait(id, condition: condition) }
                try await out.writeJSON(DockerWaitResponse(statusCode: code))
            }
        }
        router.post("/containers/{id}/attach") { request in
            let wantStdin = request.query.bool("stdin")
            let wantStdout = request.query.bool("stdout")
            let wantStderr = request.query.bool("stderr")
            let keys: DetachKeys
            do throws(DetachKeys.InvalidDetachKeys) { keys = try DetachKeys(request.query["detachKeys"] ?? "") } catch {
                throw APIError.badRequest("Invalid detach keys (\(error.text)) provided")
            }
            // Registered before the response, so a start that follows finds this client.
            let (tty, connections) = try await mapped { try await engine.attach(request.parameter("id")) }
            return .hijack(contentType: tty ? Self.raw : Self.multiplexed) { stream in
                var iterator = connections.makeAsyncIterator()
                guard let connection = await iterator.next() else {
                    await stream.finish()
                    return
                }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    if wantStdin {
                        group.addTask {
                            // With a TTY the detach keys end this client's stream; the container runs on.
                            if await DetachKeys.copy(stream.inbound, keys: tty ? keys : nil, to: { await connection.write($0) }) {
                                connection.stopReading()
                            } else {
                                connection.closeInput()
                            }
                        }
                    }
                    var demux = FrameFilter(stdout: wantStdout, stderr: wantStderr, enabled: !tty)
                    while let bytes = await connection.read() {
                        try await stream.write(demux.filter(bytes))
                    }
                    await stream.finish()
                    group.cancelAll()
                }
            }
        }
        router.get("/containers/{id}/logs") { request in
            let q = request.query
            let stdout = q.bool("stdout"), stderr = q.bool("stderr")
            guard stdout || stderr else { throw APIError.badRequest("Bad parameters: you must choose at least one stream") }
            let options = try await mapped {
                try Engine.LogOptions(follow: q.bool("follow"), stdout: stdout, stderr: stderr, timestamps: q.bool("timestamps"),
                                      tail: q["tail"], since: q["since"], until: q["until"], now: Timestamp.nowNanoseconds())
            }
            let (tty, records) = try await mapped { try await engine.logs(request.parameter("id"), options: options) }
            return .stream(contentType: tty ? Self.raw : Self.multiplexed) { out in
                for try await record in records {
                    if tty {
                        try await out.write(ByteBuffer(bytes: record.bytes))
                    } else {
                        try await out.write(Self.frame(stream: record.stderr ? 2 : 1, record.bytes))
                    }
                }
            }
        }
    }

    /// Docker's multiplexed frame: stream byte, three zeros, big-endian length, payload.
    static func frame(stream: UInt8, _ payload: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(stream)
        buffer.writeBytes([0, 0, 0])
        buffer.writeInteger(UInt32(payload.count), endianness: .big)
        buffer.writeBytes(payload)
        return buffer
    }
}

/// Drops the frames of streams the attach client did not ask for.
struct FrameFilter {
    let stdout: Bool, stderr: Bool, enabled: Bool
    var pending: [UInt8] = []

    init(stdout: Bool, stderr: Bool, enabled: Bool) {
        self.stdout = stdout
        self.stderr = stderr
        self.enabled = enabled && !(stdout && stderr)
    }

    mutating func filter(_ bytes: [UInt8]) -> [UInt8] {
        guard enabled else { return bytes }
        pending += bytes
        var out: [UInt8] = []
        while pending.count >= 8 {
            let length = pending[4..<8].reduce(0) { $0 << 8 | Int($1) }
            guard pending.count >= 8 + length else { break }
            let keep = pending[0] == 2 ? stderr : stdout
            if keep { out += pending[0..<(8 + length)] }
            pending.removeFirst(8 + length)
        }
        return out
    }
}
