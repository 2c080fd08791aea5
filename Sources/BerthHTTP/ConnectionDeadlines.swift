import NIOCore

/// Closes a connection that keeps the server waiting without asking anything: one idle
/// between requests for longer than `idle`, or one whose request head takes longer than
/// `head` to arrive (slowloris), counted from the connection's start or from the first byte
/// after the previous response, as Go's `IdleTimeout` and `ReadHeaderTimeout`.
///
/// Sits in front of the request decoder so it sees the first raw byte of each request;
/// `HTTPConnectionHandler` says when a request head is complete and when its exchange ends.
/// While a request is being answered nothing is timed: a long response stream (events, logs)
/// is the client's to end. It also tells the server which connections are idle, so that at
/// the connection cap an idle one makes room for a new one.
final class ConnectionDeadlines: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private enum Phase {
        /// Between requests: no byte of the next one yet.
        case awaitingRequest
        /// Bytes of a request head are arriving (or a new connection, which came to send one).
        case readingHead
        /// A request is being answered, or the connection left HTTP.
        case busy
    }

    private let idle: TimeAmount?
    private let head: TimeAmount?
    private let idleChanged: @Sendable (_ idle: Bool) -> Void
    private var phase = Phase.readingHead
    private var timer: Scheduled<Void>?
    private var context: ChannelHandlerContext?

    init(idle: Duration?, head: Duration?, idleChanged: @escaping @Sendable (_ idle: Bool) -> Void) {
        self.idle = idle.map(TimeAmount.init)
        self.head = head.map(TimeAmount.init)
        self.idleChanged = idleChanged
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { arm(head) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancel()
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        if phase == .readingHead, timer == nil { arm(head) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if phase == .awaitingRequest {
            phase = .readingHead
            arm(head)
        }
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancel()
        context.fireChannelInactive()
    }

    /// A request head is complete: nothing is timed until its exchange ends.
    func requestStarted() {
        guard phase != .busy else { return }
        phase = .busy
        cancel()
        idleChanged(false)
    }

    /// The exchange ended and the connection stays open for the next request.
    func requestFinished() {
        guard phase == .busy else { return }
        phase = .awaitingRequest
        arm(idle)
        idleChanged(true)
    }

    /// The connection left HTTP (attach, exec): it is the route's now, never timed again.
    func hijacked() {
        requestStarted()
    }

    private func arm(_ timeout: TimeAmount?) {
        cancel()
        guard let timeout, let context else { return }
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }

    private func cancel() {
        timer?.cancel()
        timer = nil
    }
}
