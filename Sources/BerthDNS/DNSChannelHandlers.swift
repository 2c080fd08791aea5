// The serving side on NIO: one handler per UDP socket, one per accepted TCP connection. Every
// query is answered in its own task so a slow forward never holds up the others.

import NIOCore
import Synchronization

/// DNS over TCP framing: a two-byte big-endian length before each message (RFC 1035 §4.2.2).
struct DNSFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
            buffer.readableBytes >= 2 + Int(length)
        else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 2)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(length))!))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }

    static func frame(_ message: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(message.count + 2)
        buffer.writeInteger(UInt16(truncatingIfNeeded: message.count))
        buffer.writeBytes(message.prefix(Int(UInt16.max)))
        return buffer
    }

    static func isAnswer(_ bytes: [UInt8], to id: UInt16) -> Bool {
        guard let header = try? DNSHeader(parsing: bytes) else { return false }
        return header.id == id && header.isResponse
    }
}

final class DNSDatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    let responder: DNSResponder

    init(responder: DNSResponder) { self.responder = responder }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let query = Array(envelope.data.readableBytesView)
        let client = envelope.remoteAddress
        let channel = context.channel
        let responder = self.responder
        Task {
            guard let reply = await responder.respond(to: query, over: .udp) else { return }
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: client, data: ByteBuffer(bytes: reply)), promise: nil)
        }
    }

    // A datagram socket reports ICMP errors for earlier replies as read errors; keep serving.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {}
}

/// One TCP connection: any number of framed queries, answered as they complete (RFC 7766 §6.2.1.1
/// allows out-of-order replies). Closes when idle, or after the client's half-close once all
/// replies are written.
final class DNSStreamHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let idleTimeout: TimeAmount = .seconds(30)

    let responder: DNSResponder
    private var pending = 0
    private var inputClosed = false

    init(responder: DNSResponder) { self.responder = responder }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let query = Array(unwrapInboundIn(data).readableBytesView)
        let channel = context.channel
        let responder = self.responder
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        pending += 1
        Task {
            let reply = await responder.respond(to: query, over: .tcp)
            channel.eventLoop.execute {
                if let reply { channel.writeAndFlush(DNSFrameDecoder.frame(reply), promise: nil) }
                handler.value.finishedOne(channel: channel)
            }
        }
    }

    private func finishedOne(channel: any Channel) {
        pending -= 1
        if inputClosed, pending == 0 { channel.close(promise: nil) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            if pending == 0 { context.close(promise: nil) }
        } else if let event = event as? ChannelEvent, event == .inputClosed {
            inputClosed = true
            if pending == 0 { context.close(promise: nil) }
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

/// Accepted TCP connections of one endpoint, so closing the endpoint closes them too.
final class DNSConnectionSet: Sendable {
    private struct State {
        var channels: [ObjectIdentifier: any Channel] = [:]
        var closed = false
    }

    private let state = Mutex(State())

    func insert(_ channel: any Channel) {
        let accepted = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.channels[ObjectIdentifier(channel)] = channel
            return true
        }
        guard accepted else {
            channel.close(promise: nil)
            return
        }
        channel.closeFuture.whenComplete { [weak self] _ in
            _ = self?.state.withLock { $0.channels.removeValue(forKey: ObjectIdentifier(channel)) }
        }
    }

    /// Marks the set closed and returns the connections still open.
    func closeAll() -> [any Channel] {
        state.withLock { state in
            state.closed = true
            defer { state.channels = [:] }
            return Array(state.channels.values)
        }
    }
}
