import BerthEngine
import NIOCore
import Synchronization

/// Exec routes: `docker exec` and the SDK's `exec_run`, a thin translation onto `Engine`.
public struct ExecRoutes: Sendable {
    let engine: Engine

    public init(engine: Engine) { self.engine = engine }

    public func register(on router: inout Router) {
        let engine = self.engine

        router.post("/containers/{id}/exec") { request in
            let body = try await request.decodeJSON(DockerExecCreateRequest.self)
            var config = ExecConfig(cmd: body.cmd ?? [])
            config.env = body.env ?? []
            config.user = body.user ?? ""
            config.workingDir = body.workingDir ?? ""
            config.privileged = body.privileged ?? false
            config.tty = body.tty ?? false
            config.attachStdin = body.attachStdin ?? false
            config.attachStdout = body.attachStdout ?? false
            config.attachStderr = body.attachStderr ?? false
            config.detachKeys = body.detachKeys ?? ""
            config.consoleSize = TerminalSize(dockerPair: body.consoleSize)
            // dockerd checks the keys only at start; refusing them here spares a hijack.
            _ = try Self.detachKeys(config.detachKeys)
            let id = try await mapped { try await engine.createExec(request.parameter("id"), config) }
            return try .json(DockerIDResponse(id: id), status: .created)
        }

        router.post("/exec/{id}/start") { request in
            let body = try await request.decodeJSONIfPresent(DockerExecStartRequest.self)
            let id = request.parameter("id")
            let consoleSize = TerminalSize(dockerPair: body?.consoleSize)
            if body?.detach == true {
                _ = try await mapped { try await engine.startExec(id, detach: true, consoleSize: consoleSize) }
                return Response(status: .ok)  // dockerd's answer once a detached process has started
            }
            let config = try await mapped { try await engine.execInstance(id) }.config
            let keys = config.tty && config.attachStdin ? try Self.detachKeys(config.detachKeys) : nil
            // As dockerd, the start request's Tty, not the exec's, says whether the stream is raw
            // or multiplexed: a client that asks for frames gets frames, terminal or not.
            let raw = body?.tty ?? false
            let contentType = raw || request.apiVersion < "1.42" ? ContainerRoutes.raw : ContainerRoutes.multiplexed
            // As dockerd, the stream carries a failure to start: the docker CLI shows no error
            // body of a failed upgrade, and reads the exit code (126) from the exec's inspect.
            return .hijack(contentType: contentType) { stream in
                let session: ExecSession
                do throws(EngineError) {
                    session = try await engine.startExec(id, detach: false, consoleSize: consoleSize)
                } catch {
                    let message = Array((error.message + "\r\n").utf8)
                    try? await stream.write(raw ? ByteBuffer(bytes: message) : ContainerRoutes.frame(stream: 1, message))
                    await stream.finish()
                    return
                }
                await Self.relay(session, config: config, raw: raw, keys: keys, stream: stream)
            }
        }

        router.post("/exec/{id}/resize") { request in
            let size = try Self.terminalSize(request.query)
            try await mapped { try await engine.resizeExec(request.parameter("id"), size) }
            return Response(status: .ok)
        }

        router.get("/exec/{id}/json") { request in
            try .json(DockerExecInspect(exec: try await mapped { try await engine.execInstance(request.parameter("id")) }))
        }
    }

    static func detachKeys(_ text: String) throws -> DetachKeys {
        do { return try DetachKeys(text) } catch {
            throw APIError.badRequest("Invalid escape keys (\(text)) provided")
        }
    }

    /// `h` and `w` of a resize request.
    static func terminalSize(_ query: QueryItems) throws -> TerminalSize {
        guard let h = try query.int("h"), let w = try query.int("w"),
              let rows = UInt16(exactly: h), let columns = UInt16(exactly: w) else {
            throw APIError.badRequest("resize needs h and w, the height and width in characters (0 to 65535)")
        }
        return TerminalSize(rows: rows, columns: columns)
    }

    /// Client stdin to the process, its output to the client (raw when the start asked for a
    /// TTY, else Docker's frames) until the process's output ends; then, once the exit code is recorded, end of
    /// stream. After a detach or a disconnect the output is still read (and dropped), so the
    /// process never blocks on a full pipe.
    static func relay(_ session: ExecSession, config: ExecConfig, raw: Bool, keys: DetachKeys?, stream: HijackedStream) async {
        let client = ClientLink(stream)
        await withTaskGroup(of: Void.self) { group in
            if config.attachStdin, session.acceptsInput {
                group.addTask {
                    if await DetachKeys.copy(stream.inbound, keys: keys, to: { await session.write($0) }) {
                        await client.detach()
                    } else {
                        session.closeInput()
                    }
                }
            }
            await withTaskGroup(of: Void.self) { outputs in
                for output in session.outputs {
                    let wanted = output.stream == 1 ? config.attachStdout : config.attachStderr
                    outputs.addTask {
                        while let bytes = await session.read(output) {
                            guard wanted || session.tty else { continue }
                            await client.send(raw ? ByteBuffer(bytes: bytes) : ContainerRoutes.frame(stream: output.stream, bytes))
                        }
                    }
                }
            }
            await session.recorded()
            await stream.finish()
            group.cancelAll()
        }
    }
}

/// The hijacked client as the output pumps see it: gone once a write failed or it detached.
private final class ClientLink: Sendable {
    private let stream: HijackedStream
    private let gone = Mutex(false)

    init(_ stream: HijackedStream) { self.stream = stream }

    func send(_ buffer: ByteBuffer) async {
        guard !gone.withLock({ $0 }) else { return }
        do { try await stream.write(buffer) } catch { gone.withLock { $0 = true } }
    }

    /// Ends the client's stream; the process runs on.
    func detach() async {
        gone.withLock { $0 = true }
        await stream.finish()
    }
}
