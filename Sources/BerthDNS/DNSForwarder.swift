// Relays queries the daemon does not answer to upstream resolvers, in order, each with its own
// timeout; from the daemon's (host) namespace, so loopback upstreams like 127.0.0.53 work.

import NIOCore
import NIOPosix
import Synchronization

struct DNSForwardError: Error, CustomStringConvertible {
    var description: String
    static let timeout = DNSForwardError(description: "upstream did not answer in time")
    static let closed = DNSForwardError(description: "upstream connection closed before an answer")
}

struct DNSForwarder: Sendable {
    let group: any EventLoopGroup
    let upstreams: [DNSUpstream]
    let timeout: TimeAmount
    let slots: DNSForwardSlots

    init(group: any EventLoopGroup, upstreams: [DNSUpstream], timeout: TimeAmount, maxConcurrent: Int) {
        self.group = group
        self.upstreams = upstreams
        self.timeout = timeout
        self.slots = DNSForwardSlots(limit: maxConcurrent)
    }

    /// The first usable upstream answer, unchanged (a truncated UDP answer counts: the client
    /// then retries over TCP). SERVFAIL and REFUSED move on to the next upstream, as Docker
    /// does. nil when none answered, there are none, or too many forwards are in flight.
    func forward(_ query: [UInt8], id: UInt16, over transport: DNSTransport) async -> [UInt8]? {
        guard !upstreams.isEmpty, slots.acquire() else { return nil }
        defer { slots.release() }
        for upstream in upstreams {
            guard let address = try? SocketAddress(ipAddress: upstream.address, port: Int(upstream.port)) else {
                continue
            }
            let answer: [UInt8]
            do {
                switch transport {
                case .udp: answer = try await exchangeOverUDP(query, id: id, with: address)
                case .tcp: answer = try await exchangeOverTCP(query, id: id, with: address)
                }
            } catch {
                continue
            }
            guard let header = try? DNSHeader(parsing: answer) else { continue }
            if header.responseCode == .serverFailure || header.responseCode == .refused { continue }
            return answer
        }
        return nil
    }

    private func exchangeOverUDP(_ query: [UInt8], id: UInt16, with address: SocketAddress) async throws -> [UInt8] {
        let loop = group.next()
        let answer = loop.makePromise(of: [UInt8].self)
        let timer = loop.scheduleTask(in: timeout) { answer.fail(DNSForwardError.timeout) }
        defer {
            timer.cancel()
            answer.fail(DNSForwardError.closed)  // no-op once answered; NIO traps on abandoned promises
        }
        // A connected socket only receives from the upstream, and an ICMP port unreachable
        // surfaces as an error at once instead of a timeout.
        let channel = try await DatagramBootstrap(group: loop)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DNSDatagramAnswerHandler(id: id, answer: answer))
                }
            }
            .connect(to: address).get()
        defer { channel.close(promise: nil) }
        channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: ByteBuffer(bytes: query)), promise: nil)
        return try await answer.futureResult.get()
    }

    private func exchangeOverTCP(_ query: [UInt8], id: UInt16, with address: SocketAddress) async throws -> [UInt8] {
        let loop = group.next()
        let answer = loop.makePromise(of: [UInt8].self)
        let timer = loop.scheduleTask(in: timeout) { answer.fail(DNSForwardError.timeout) }
        defer {
            timer.cancel()
            answer.fail(DNSForwardError.closed)  // no-op once answered; NIO traps on abandoned promises
        }
        let channel = try await ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        ByteToMessageHandler(DNSFrameDecoder()),
                        DNSStreamAnswerHandler(id: id, answer: answer),
                    ])
                }
            }
            .connect(to: address).get()
        defer { channel.close(promise: nil) }
        channel.writeAndFlush(DNSFrameDecoder.frame(query), promise: nil)
        return try await answer.futureResult.get()
    }
}

/// Counts forwards in flight so a flood of queries cannot open unbounded sockets.
final class DNSForwardSlots: Sendable {
    let limit: Int
    private let inFlight = Mutex(0)

    init(limit: Int) { self.limit = limit }

    func acquire() -> Bool {
        inFlight.withLock { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    func release() { inFlight.withLock { $0 -= 1 } }
}

/// Completes `answer` with the first datagram that is a response carrying our ID.
final class DNSDatagramAnswerHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    let id: UInt16
    let answer: EventLoopPromise<[UInt8]>

    init(id: UInt16, answer: EventLoopPromise<[UInt8]>) {
        self.id = id
        self.answer = answer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = Array(unwrapInboundIn(data).data.readableBytesView)
        if DNSFrameDecoder.isAnswer(bytes, to: id) { answer.succeed(bytes) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { answer.fail(error) }

    func channelInactive(context: ChannelHandlerContext) { answer.fail(DNSForwardError.closed) }
}

/// Completes `answer` with the first framed message that is a response carrying our ID.
final class DNSStreamAnswerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    let id: UInt16
    let answer: EventLoopPromise<[UInt8]>

    init(id: UInt16, answer: EventLoopPromise<[UInt8]>) {
        self.id = id
        self.answer = answer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = Array(unwrapInboundIn(data).readableBytesView)
        if DNSFrameDecoder.isAnswer(bytes, to: id) { answer.succeed(bytes) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        answer.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) { answer.fail(DNSForwardError.closed) }
}
