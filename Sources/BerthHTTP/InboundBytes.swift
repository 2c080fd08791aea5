import NIOCore
import Synchronization

/// Bytes read from a connection on its event loop, handed to a route's task with back-pressure:
/// when the consumer falls behind by `highWatermark` buffers the channel handler stops calling
/// `read()`, and `produceMore` (called when the consumer catches up) resumes it.
typealias InboundBytes = NIOThrowingAsyncSequenceProducer<
    ByteBuffer, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, InboundDemand
>

/// The consumer side's signals, forwarded to the channel handler on its event loop.
struct InboundDemand: NIOAsyncSequenceProducerDelegate {
    let onProduceMore: @Sendable () -> Void
    let onTerminate: @Sendable () -> Void

    func produceMore() { onProduceMore() }
    func didTerminate() { onTerminate() }
}

extension InboundBytes {
    static func make(onProduceMore: @escaping @Sendable () -> Void, onTerminate: @escaping @Sendable () -> Void) -> NewSequence {
        makeSequence(
            elementType: ByteBuffer.self,
            failureType: (any Error).self,
            backPressureStrategy: .init(lowWatermark: 2, highWatermark: 8),
            finishOnDeinit: false,
            delegate: InboundDemand(onProduceMore: onProduceMore, onTerminate: onTerminate))
    }
}

/// The single iterator of an inbound sequence, shared with the `AsyncStream(unfolding:)` that a
/// hijacked route reads. AsyncStream's consumer is one task that awaits one element at a time,
/// so the iterator is never touched concurrently.
final class InboundIteratorBox: @unchecked Sendable {
    private var iterator: InboundBytes.AsyncIterator?
    private let ledger: InboundLedger

    init(_ sequence: InboundBytes, ledger: InboundLedger) {
        iterator = sequence.makeAsyncIterator()
        self.ledger = ledger
    }

    func next() async -> ByteBuffer? {
        guard let it = iterator else { return nil }
        iterator = nil
        let element = try? await it.next()
        if element != nil { iterator = it }
        ledger.consumed()
        return element
    }

    /// Pulls on demand, so the stream keeps the producer's back-pressure (an AsyncStream fed by
    /// `yield` would buffer without bound).
    static func stream(_ sequence: InboundBytes, ledger: InboundLedger) -> AsyncStream<ByteBuffer> {
        let box = InboundIteratorBox(sequence, ledger: ledger)
        return AsyncStream(unfolding: { await box.next() })
    }
}

/// Decides when a hijacked route's task may be cancelled after the client has gone: only once
/// the route has read everything the client sent. A cancelled `AsyncStream(unfolding:)` ends at
/// once, so cancelling earlier would drop bytes that arrived just before the close (a client
/// that sends its last stdin and disconnects).
final class InboundLedger: Sendable {
    private struct State {
        var unread = 0
        var connectionClosed = false
        var cancelled = false
        var task: Task<Void, Never>?
    }

    private let state = Mutex(State())

    func setTask(_ task: Task<Void, Never>) { state.withLock { $0.task = task } }

    /// A buffer was handed to the inbound sequence.
    func yielded() { state.withLock { $0.unread += 1 } }

    /// The route took a buffer, or the end.
    func consumed() { cancelIfDone { $0.unread = max(0, $0.unread - 1) } }

    /// The route will read no more (it dropped the stream or read its end).
    func abandoned() { cancelIfDone { $0.unread = 0 } }

    func connectionClosed() { cancelIfDone { $0.connectionClosed = true } }

    private func cancelIfDone(_ change: (inout State) -> Void) {
        let task = state.withLock { s -> Task<Void, Never>? in
            change(&s)
            guard s.connectionClosed, s.unread == 0, !s.cancelled, let task = s.task else { return nil }
            s.cancelled = true
            return task
        }
        task?.cancel()
    }
}

/// Where outbound bytes wait for the socket: a write completes at once while the channel is
/// writable and otherwise when it becomes writable again, so a fast producer (logs, a
/// container's stdout) is slowed to the client's pace without blocking the event loop.
/// Lives on the event loop, owned by one channel handler. A class, because writing can
/// re-enter it: a flush that fills the socket fires the writability change synchronously.
final class OutboundGate {
    private var waiters: [EventLoopPromise<Void>] = []
    private var failure: (any Error)?
    private(set) var lastWrite: EventLoopFuture<Void>?

    func write(_ data: NIOAny, context: ChannelHandlerContext) -> EventLoopFuture<Void> {
        if let failure { return context.eventLoop.makeFailedFuture(failure) }
        guard context.channel.isActive else { return context.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
        lastWrite = context.writeAndFlush(data)
        // A failed write closes the channel; channelInactive then fails the waiters.
        if context.channel.isWritable { return context.eventLoop.makeSucceededVoidFuture() }
        let promise = context.eventLoop.makePromise(of: Void.self)
        waiters.append(promise)
        return promise.futureResult
    }

    func writabilityChanged(_ writable: Bool) {
        guard writable else { return }
        let ready = waiters
        waiters = []
        for waiter in ready { waiter.succeed() }
    }

    func fail(_ error: any Error) {
        if failure == nil { failure = error }
        let ready = waiters
        waiters = []
        for waiter in ready { waiter.fail(error) }
    }
}
