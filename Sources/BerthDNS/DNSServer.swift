/// BerthDNS: Docker's embedded DNS server (the resolver at 127.0.0.11 in containers on
/// user-defined networks) and resolv.conf handling.
///
/// It owns the DNS wire format, answering names the daemon knows (through a `DNSLookup`
/// closure), forwarding the rest to upstream resolvers, and resolv.conf parsing/rendering.
/// It knows nothing of containers, networks or namespaces: the daemon opens the sockets in the
/// container's namespace and hands over the descriptors. Imports only BerthOS and swift-nio.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NIOCore
import NIOPosix

/// What the daemon knows about a name. `.forward` = not ours, ask upstream.
public enum DNSLookupResult: Sendable, Equatable {
    /// IPv4 dotted and/or IPv6 text; the server picks those matching the query type.
    case addresses([String])
    /// PTR answers, fully qualified without trailing dot.
    case names([String])
    case forward
    /// NXDOMAIN.
    case nameError
}

/// Called with the lower-cased query name WITHOUT trailing dot and the type.
public typealias DNSLookup = @Sendable (_ name: String, _ type: DNSRecordType) async -> DNSLookupResult

/// A resolver that forwarded queries go to.
public struct DNSUpstream: Sendable, Hashable, CustomStringConvertible {
    public var address: String
    public var port: UInt16 = 53

    public init(address: String, port: UInt16 = 53) {
        self.address = address
        self.port = port
    }

    public var description: String { address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)" }
}

/// Serves the embedded DNS for any number of containers from one event loop group.
public final class DNSServer: Sendable {
    /// Docker answers container names with this TTL.
    public static let answerTTL: UInt32 = 600

    let group: any EventLoopGroup
    let forwardTimeout: TimeAmount
    let maxConcurrentForwards: Int

    /// - Parameters:
    ///   - forwardTimeout: how long to wait for each upstream before trying the next.
    ///   - maxConcurrentForwards: per endpoint; beyond it queries to forward get SERVFAIL
    ///     (Docker caps at 1024 too).
    public init(group: any EventLoopGroup, forwardTimeout: TimeAmount = .seconds(2), maxConcurrentForwards: Int = 1024) {
        self.group = group
        self.forwardTimeout = forwardTimeout
        self.maxConcurrentForwards = maxConcurrentForwards
    }

    /// Starts answering on already-bound sockets (a UDP socket, and a listening TCP socket).
    /// Takes ownership of both descriptors, also when it throws; `DNSEndpoint.close()` closes them.
    public func serve(
        udpSocket: Int32, tcpSocket: Int32?, upstreams: [DNSUpstream], lookup: @escaping DNSLookup
    ) async throws -> DNSEndpoint {
        let forwarder = DNSForwarder(
            group: group, upstreams: upstreams, timeout: forwardTimeout, maxConcurrent: maxConcurrentForwards)
        let responder = DNSResponder(lookup: lookup, forwarder: forwarder)
        let connections = DNSConnectionSet()

        let udpChannel: any Channel
        do {
            udpChannel = try await DatagramBootstrap(group: group)
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(DNSDatagramHandler(responder: responder))
                    }
                }
                .withBoundSocket(udpSocket).get()
        } catch {
            if let tcpSocket { _ = Glibc.close(tcpSocket) }
            throw error
        }

        var tcpChannel: (any Channel)? = nil
        if let tcpSocket {
            do {
                tcpChannel = try await ServerBootstrap(group: group)
                    .childChannelOption(.allowRemoteHalfClosure, value: true)
                    .childChannelInitializer { channel in
                        connections.insert(channel)
                        return channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandlers([
                                IdleStateHandler(readTimeout: DNSStreamHandler.idleTimeout),
                                ByteToMessageHandler(DNSFrameDecoder()),
                                DNSStreamHandler(responder: responder),
                            ])
                        }
                    }
                    .withBoundSocket(tcpSocket).get()
            } catch {
                try? await udpChannel.close()
                throw error
            }
        }
        return DNSEndpoint(udp: udpChannel, tcp: tcpChannel, connections: connections)
    }
}

/// One container's embedded DNS: the served sockets and the TCP connections accepted on them.
public final class DNSEndpoint: Sendable {
    let udp: any Channel
    let tcp: (any Channel)?
    let connections: DNSConnectionSet

    init(udp: any Channel, tcp: (any Channel)?, connections: DNSConnectionSet) {
        self.udp = udp
        self.tcp = tcp
        self.connections = connections
    }

    /// Stops serving: closes both sockets and every open TCP connection. Idempotent.
    public func close() async {
        try? await udp.close()
        if let tcp { try? await tcp.close() }
        for channel in connections.closeAll() { try? await channel.close() }
    }
}
