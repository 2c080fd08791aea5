import NIOCore
import NIOHTTP1

/// One HTTP/1.1 connection: requests one at a time (keep-alive, no concurrent pipelining: a
/// pipelined request waits for the previous response), each answered by its own task.
///
/// Lives on the connection's event loop. The request task reaches back only through
/// `NIOLoopBound` hops, so nothing here is touched off the loop. Reads are held back (by not
/// passing `read()` on) while a route consumes a body more slowly than it arrives and while a
/// response is being produced; that is the whole of the back-pressure on requests.
final class HTTPConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private final class Exchange {
        let id: Int
        let head: HTTPRequestHead
        var keepAlive: Bool
        /// Feeds the route's `RequestBody` while the route may still read it.
        var source: InboundBytes.Source?
        var bodyPaused = false
        var requestEnded = false
        var responseStarted = false
        var responseDone = false
        var streaming = false
        var task: Task<Void, Never>?
        var pendingHijack: (Response, @Sendable (HijackedStream) async throws -> Void)?

        init(id: Int, head: HTTPRequestHead, keepAlive: Bool) {
            self.id = id
            self.head = head
            self.keepAlive = keepAlive
        }
    }

    private let responder: Responder
    private let decoder: ByteToMessageHandler<HTTPRequestDecoder>
    private let encoder: HTTPResponseEncoder
    private var context: ChannelHandlerContext!
    private var exchange: Exchange?
    /// Parts of a pipelined request that arrived in the same read as the previous one's end.
    private var pipelined: [HTTPServerRequestPart] = []
    private var readPending = false
    private var inputClosed = false
    private var quiescing = false
    private var hijacked = false
    private var nextID = 0
    private let gate = OutboundGate()
    private var lastFlush: EventLoopFuture<Void>?

    /// The connection's idle and request-head timers, when the server has them.
    private let deadlines: ConnectionDeadlines?

    init(
        responder: Responder, decoder: ByteToMessageHandler<HTTPRequestDecoder>, encoder: HTTPResponseEncoder,
        deadlines: ConnectionDeadlines? = nil
    ) {
        self.responder = responder
        self.decoder = decoder
        self.encoder = encoder
        self.deadlines = deadlines
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if let exchange, exchange.requestEnded {
            pipelined.append(part)
            return
        }
        handle(part)
    }

    private func handle(_ part: HTTPServerRequestPart) {
        switch part {
        case .head(let head):
            begin(head)
        case .body(let buffer):
            guard let exchange, let source = exchange.source else { return }  // unread body: drained
            switch source.yield(buffer) {
            case .produceMore: break
            case .stopProducing: exchange.bodyPaused = true
            case .dropped: exchange.source = nil
            }
        case .end:
            guard let exchange else { return }
            exchange.requestEnded = true
            exchange.source?.finish()
            exchange.source = nil
            exchange.bodyPaused = false
            if exchange.pendingHijack != nil {
                // Not from inside the decoder's read loop, which is on the stack right now.
                let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
                let id = exchange.id
                context.eventLoop.execute { bound.value.hijackWhenReady(id) }
            } else if exchange.responseDone {
                complete(exchange)
            }
        }
    }

    private func begin(_ head: HTTPRequestHead) {
        nextID += 1
        let id = nextID
        let exchange = Exchange(id: id, head: head, keepAlive: head.isKeepAlive && !quiescing && !inputClosed)
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let body: RequestBody
        if head.hasBody {
            let inbound = InboundBytes.make(
                onProduceMore: { bound.eventLoop.execute { bound.value.bodyDemanded(id) } },
                onTerminate: { bound.eventLoop.execute { bound.value.bodyAbandoned(id) } })
            exchange.source = inbound.source
            body = RequestBody(storage: .stream(inbound.sequence))
        } else {
            body = .empty
        }
        self.exchange = exchange
        deadlines?.requestStarted()
        if head.version.minor >= 1, head.headers["Expect"].contains(where: { $0.lowercased() == "100-continue" }) {
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
        }
        let responder = self.responder
        let remoteAddress = context.channel.remoteAddress
        exchange.task = Task {
            let response = await responder.respond(to: head, body: body, remoteAddress: remoteAddress)
            bound.eventLoop.execute { bound.value.respond(id, response) }
        }
    }

    private func bodyDemanded(_ id: Int) {
        guard let exchange, exchange.id == id else { return }
        exchange.bodyPaused = false
        resumeReading()
    }

    /// The route stopped reading the body (finished it, or dropped it): discard the rest.
    private func bodyAbandoned(_ id: Int) {
        guard let exchange, exchange.id == id else { return }
        exchange.source = nil
        exchange.bodyPaused = false
        resumeReading()
    }

    // MARK: Read control

    func read(context: ChannelHandlerContext) {
        if let exchange, exchange.requestEnded || exchange.bodyPaused {
            readPending = true
        } else {
            context.read()
        }
    }

    private func resumeReading() {
        guard readPending else { return }
        if let exchange, exchange.requestEnded || exchange.bodyPaused { return }
        readPending = false
        context.read()
    }

    // MARK: Responses

    private func respond(_ id: Int, _ response: Response) {
        guard let exchange, exchange.id == id else { return }
        var response = response
        if case .hijack(let body) = response.body {
            exchange.source?.finish()
            exchange.source = nil
            exchange.bodyPaused = false
            if exchange.requestEnded {
                hijack(exchange, response, body)
            } else {
                exchange.pendingHijack = (response, body)  // after the rest of the body is drained
                resumeReading()
            }
            return
        }
        // After an Upgrade request the decoder parses no further requests on this connection.
        if exchange.head.wantsUpgrade { exchange.keepAlive = false }
        if !exchange.keepAlive {
            response.headers.replaceOrAdd(name: "Connection", value: "close")
        } else if exchange.head.version.minor == 0 {
            response.headers.replaceOrAdd(name: "Connection", value: "keep-alive")
        }
        let isHead = exchange.head.method == .HEAD
        let mayHaveBody = response.status.code >= 200 && response.status != .noContent && response.status != .notModified
        exchange.responseStarted = true
        let version = exchange.head.version
        switch response.body {
        case .empty, .bytes, .hijack:
            var buffer: ByteBuffer?
            if case .bytes(let b) = response.body { buffer = b }
            if mayHaveBody, !response.headers.contains(name: "Content-Length") {
                response.headers.replaceOrAdd(name: "Content-Length", value: "\(buffer?.readableBytes ?? 0)")
            }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: response.status, headers: response.headers))), promise: nil)
            if !isHead, mayHaveBody, let buffer, buffer.readableBytes > 0 {
                context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            }
            lastFlush = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            finished(exchange)
        case .stream(let body):
            if isHead || !mayHaveBody {
                if !isHead || !response.headers.contains(name: "Content-Length") {
                    response.headers.replaceOrAdd(name: "Content-Length", value: "0")
                }
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: response.status, headers: response.headers))), promise: nil)
                lastFlush = context.writeAndFlush(wrapOutboundOut(.end(nil)))
                finished(exchange)
                return
            }
            // A stream that states its length is sent as is; otherwise chunked.
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: response.status, headers: response.headers))), promise: nil)
            exchange.streaming = true
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            let stream = ResponseStream { buffer in
                try await bound.eventLoop.flatSubmit { bound.value.streamWrite(id, buffer) }.get()
            }
            let log = responder.log
            exchange.task = Task {
                do {
                    try await body(stream)
                    bound.eventLoop.execute { bound.value.streamEnded(id, failed: false) }
                } catch {
                    log.debug("response stream ended early", [("error", "\(error)")])
                    bound.eventLoop.execute { bound.value.streamEnded(id, failed: true) }
                }
            }
        }
    }

    private func streamWrite(_ id: Int, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        guard let exchange, exchange.id == id, !exchange.responseDone else {
            return context.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
        }
        return gate.write(wrapOutboundOut(.body(.byteBuffer(buffer))), context: context)
    }

    private func streamEnded(_ id: Int, failed: Bool) {
        guard let exchange, exchange.id == id else { return }
        if failed {
            // Headers are gone: cutting the connection is the only way to say "incomplete".
            context.close(promise: nil)
            return
        }
        lastFlush = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        finished(exchange)
    }

    /// The response is written; the exchange ends when the request has too.
    private func finished(_ exchange: Exchange) {
        exchange.responseDone = true
        if exchange.requestEnded {
            complete(exchange)
        } else {
            exchange.source?.finish()
            exchange.source = nil
            exchange.bodyPaused = false
            resumeReading()
        }
    }

    private func complete(_ exchange: Exchange) {
        self.exchange = nil
        if !exchange.keepAlive || inputClosed || quiescing {
            closeAfterFlush()
            return
        }
        deadlines?.requestFinished()
        while self.exchange?.requestEnded != true, !pipelined.isEmpty {
            handle(pipelined.removeFirst())
        }
        resumeReading()
    }

    /// NIO fails writes still queued when a channel closes, so a large response is let out first.
    private func closeAfterFlush() {
        let channel = context.channel
        if let lastFlush {
            lastFlush.whenComplete { _ in channel.close(promise: nil) }
        } else {
            channel.close(promise: nil)
        }
    }

    // MARK: Hijack

    private func hijackWhenReady(_ id: Int) {
        guard let exchange, exchange.id == id, let (response, body) = exchange.pendingHijack else { return }
        hijack(exchange, response, body)
    }

    /// Leaves HTTP: the response head goes out as raw bytes and, in this same event-loop tick,
    /// the encoder goes, a raw byte handler comes in, this handler leaves and the decoder
    /// leaves last, forwarding any bytes it had buffered past the request (PLATFORM-NOTES:
    /// NIO's upgrade handler drops the request body and keeps the HTTP handler).
    private func hijack(_ exchange: Exchange, _ response: Response, _ body: @escaping @Sendable (HijackedStream) async throws -> Void) {
        self.exchange = nil
        hijacked = true
        deadlines?.hijacked()
        let upgrade = exchange.head.wantsUpgrade
        var headers = response.headers
        if upgrade {
            headers.replaceOrAdd(name: "Connection", value: "Upgrade")
            headers.replaceOrAdd(name: "Upgrade", value: "tcp")
        }
        var text = upgrade ? "HTTP/1.1 101 UPGRADED\r\n" : "HTTP/1.1 200 OK\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "\r\n"

        let raw = RawStreamHandler(body: body, log: responder.log, quiescing: quiescing)
        let pipeline = context.pipeline.syncOperations
        pipeline.removeHandler(encoder, promise: nil)
        context.writeAndFlush(NIOAny(ByteBuffer(string: text)), promise: nil)
        do {
            try pipeline.addHandler(raw, position: .last)
        } catch {
            responder.log.error("hijack failed", [("error", "\(error)")])
            context.close(promise: nil)
            return
        }
        let context = self.context!
        pipeline.removeHandler(context: context, promise: nil)
        pipeline.removeHandler(decoder, promise: nil)
        raw.start()
    }

    // MARK: Connection events

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        gate.writabilityChanged(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        gate.fail(ChannelError.ioOnClosedChannel)
        if let exchange {
            exchange.source?.finish(ChannelError.eof)
            exchange.source = nil
            exchange.task?.cancel()
            self.exchange = nil
        }
        pipelined = []
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // The client will send nothing more: answer what is in flight, then close.
            inputClosed = true
            if exchange == nil { context.close(promise: nil) }
        } else if event is ChannelShouldQuiesceEvent {
            quiescing = true
            if let exchange {
                exchange.keepAlive = false
                if exchange.streaming { exchange.task?.cancel() }  // events, logs -f: never end by themselves
            } else {
                context.close(promise: nil)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let exchange {
            exchange.source?.finish(error)
            exchange.source = nil
            exchange.task?.cancel()
        }
        let started = exchange?.responseStarted ?? false
        exchange = nil
        if !started, error is HTTPParserError {
            var response = responder.policy.errorResponse(HTTPError.badRequest("malformed HTTP request: \(error)"))
            responder.addCommonHeaders(&response.headers)
            response.headers.replaceOrAdd(name: "Connection", value: "close")
            if case .bytes(let buffer) = response.body {
                response.headers.replaceOrAdd(name: "Content-Length", value: "\(buffer.readableBytes)")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: response.headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            }
            lastFlush = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            closeAfterFlush()
        } else {
            context.close(promise: nil)
        }
    }
}

extension HTTPRequestHead {
    /// A Content-Length above zero or a chunked transfer coding (RFC 9112 §6.3).
    var hasBody: Bool {
        if headers["Transfer-Encoding"].contains(where: { $0.lowercased().contains("chunked") }) { return true }
        if let length = headers.first(name: "Content-Length").flatMap(Int.init) { return length > 0 }
        return false
    }
}
