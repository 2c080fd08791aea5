import NIOCore

/// A hijacked connection's only handler: raw bytes in to the route's `inbound` stream, raw
/// bytes out from its `write`s, each way with back-pressure. The route runs in its own task;
/// the connection closes when it returns. When the client disconnects, the route's writes fail
/// and its task is cancelled once it has read what the client sent before leaving.
final class RawStreamHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let body: @Sendable (HijackedStream) async throws -> Void
    private let log: ServerLog
    private var context: ChannelHandlerContext!
    private var source: InboundBytes.Source?
    private var paused = false
    private var readPending = false
    private var outputClosed = false
    private var quiescing: Bool
    private let gate = OutboundGate()
    private var task: Task<Void, Never>?
    private let ledger = InboundLedger()

    init(body: @escaping @Sendable (HijackedStream) async throws -> Void, log: ServerLog, quiescing: Bool) {
        self.body = body
        self.log = log
        self.quiescing = quiescing
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let inbound = InboundBytes.make(
            onProduceMore: { bound.eventLoop.execute { bound.value.demanded() } },
            onTerminate: { bound.eventLoop.execute { bound.value.abandoned() } })
        source = inbound.source
        let stream = HijackedStream(
            inbound: InboundIteratorBox.stream(inbound.sequence, ledger: ledger),
            write: { buffer in try await bound.eventLoop.flatSubmit { bound.value.write(buffer) }.get() },
            finish: { try? await bound.eventLoop.flatSubmit { bound.value.shutdownOutput() }.get() })
        let body = self.body
        let log = self.log
        let task = Task {
            do {
                try await body(stream)
            } catch is CancellationError {
            } catch {
                log.debug("hijacked stream ended with an error", [("error", "\(error)")])
            }
            try? await bound.eventLoop.flatSubmit { bound.value.closeAfterFlush() }.get()
        }
        self.task = task
        ledger.setTask(task)
    }

    /// Called once the HTTP handlers are gone: reads may have been held back until now.
    func start() {
        if quiescing { task?.cancel() }
        readPending = false
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let source else { return }  // the route stopped reading: discard
        ledger.yielded()
        switch source.yield(unwrapInboundIn(data)) {
        case .produceMore: break
        case .stopProducing: paused = true
        case .dropped:
            self.source = nil
            ledger.abandoned()
        }
    }

    func read(context: ChannelHandlerContext) {
        if paused {
            readPending = true
        } else {
            context.read()
        }
    }

    private func demanded() {
        paused = false
        if readPending {
            readPending = false
            context.read()
        }
    }

    private func abandoned() {
        source = nil
        ledger.abandoned()
        demanded()
    }

    private func write(_ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        if outputClosed { return context.eventLoop.makeFailedFuture(ChannelError.outputClosed) }
        return gate.write(wrapOutboundOut(buffer), context: context)
    }

    private func shutdownOutput() -> EventLoopFuture<Void> {
        guard !outputClosed, context.channel.isActive else { return context.eventLoop.makeSucceededVoidFuture() }
        outputClosed = true
        let channel = context.channel
        let promise = context.eventLoop.makePromise(of: Void.self)
        (gate.lastWrite ?? context.eventLoop.makeSucceededVoidFuture()).whenComplete { _ in
            channel.close(mode: .output, promise: promise)
        }
        return promise.futureResult.recover { _ in }
    }

    private func closeAfterFlush() -> EventLoopFuture<Void> {
        let channel = context.channel
        guard channel.isActive else { return context.eventLoop.makeSucceededVoidFuture() }
        let promise = context.eventLoop.makePromise(of: Void.self)
        (gate.lastWrite ?? context.eventLoop.makeSucceededVoidFuture()).whenComplete { _ in
            channel.close(promise: promise)
        }
        return promise.futureResult.recover { _ in }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        gate.writabilityChanged(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // Half-close: the client's stdin ended; its output side stays open.
            source?.finish()
            source = nil
        } else if event is ChannelShouldQuiesceEvent {
            task?.cancel()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        source?.finish()
        source = nil
        gate.fail(ChannelError.ioOnClosedChannel)
        ledger.connectionClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        log.debug("hijacked connection error", [("error", "\(error)")])
        context.close(promise: nil)
    }
}
