import BerthDNS
import NIOPosix

public enum EmbeddedDNS {
    /// One server for every container's 127.0.0.11, on NIO's shared event loops.
    public static func makeServer() -> DNSServer { DNSServer(group: MultiThreadedEventLoopGroup.singleton) }
}
