import BerthOS
import Glibc

/// Pumps a hijacked attach/exec stream on one thread: stdin to the socket, the socket to
/// stdout/stderr (demultiplexed unless the stream is a raw TTY stream), and signals to a handler.
public struct StreamSession {
    public let response: Response
    /// Multiplexed (no TTY) or raw.
    public let multiplexed: Bool
    /// Forward our stdin to the stream.
    public let forwardStdin: Bool
    /// Half-close the stream when stdin ends (without a TTY the process must see EOF).
    public let closeOnStdinEOF: Bool
    /// The detach sequence the daemon watches for on a TTY (ctrl-p ctrl-q unless changed); seen
    /// on the way out, it tells a detach from the end of the process.
    public let detachSequence: [UInt8]

    public enum Outcome: Equatable, Sendable { case ended, detached }

    public init(response: Response, forwardStdin: Bool, tty: Bool, detachSequence: [UInt8] = [0x10, 0x11]) {
        self.response = response
        // By the TTY setting, as the docker CLI decides: daemons before API 1.42 call every
        // hijacked stream `raw-stream`.
        multiplexed = !tty
        self.forwardStdin = forwardStdin
        closeOnStdinEOF = !tty
        self.detachSequence = tty && forwardStdin ? detachSequence : []
    }

    /// Parses docker's `--detach-keys` (`ctrl-p,ctrl-q`, `a,ctrl-@`); nil when malformed.
    public static func detachSequence(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        for key in text.split(separator: ",") {
            let k = key.lowercased()
            if k.hasPrefix("ctrl-"), k.count == 6, let c = k.last?.asciiValue {
                switch c {
                case UInt8(ascii: "a")...UInt8(ascii: "z"): out.append(c - UInt8(ascii: "a") + 1)
                case UInt8(ascii: "@"): out.append(0)
                case UInt8(ascii: "["): out.append(27)
                case UInt8(ascii: "\\"): out.append(28)
                case UInt8(ascii: "]"): out.append(29)
                case UInt8(ascii: "^"): out.append(30)
                case UInt8(ascii: "_"): out.append(31)
                default: return nil
                }
            } else if key.utf8.count == 1, let c = key.utf8.first {
                out.append(c)
            } else {
                return nil
            }
        }
        return out.isEmpty ? nil : out
    }

    /// Runs until the output stream ends. `signalFD` (from `SignalPipe`) delivers signals to
    /// `onSignal`.
    public func run(signalFD: Int32 = -1, onSignal: (Int32) -> Void = { _ in }) throws(ClientError) -> Outcome {
        let connection = response.connection
        var decoder = FrameDecoder()
        func output(_ bytes: [UInt8]) {
            guard multiplexed else { writeAll(1, bytes); return }
            for frame in decoder.feed(bytes) { writeAll(frame.stream == 2 ? 2 : 1, frame.payload) }
        }
        output(connection.takeBuffered())
        var stdinOpen = forwardStdin
        var matched = 0  // how much of the detach sequence the last stdin bytes spelled
        var buf = [UInt8](repeating: 0, count: 32768)
        while true {
            var fds = [pollfd(fd: connection.fd, events: Int16(POLLIN), revents: 0)]
            if stdinOpen { fds.append(pollfd(fd: 0, events: Int16(POLLIN), revents: 0)) }
            if signalFD >= 0 { fds.append(pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0)) }
            let rc = poll(&fds, nfds_t(fds.count), -1)
            if rc < 0 {
                if errno == EINTR { continue }
                throw ClientError(.connection, SystemError("poll").message)
            }
            for p in fds where p.revents != 0 {
                if p.fd == connection.fd {
                    let n = buf.withUnsafeMutableBytes { read(connection.fd, $0.baseAddress, $0.count) }
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { return !detachSequence.isEmpty && matched == detachSequence.count ? .detached : .ended }
                    output(Array(buf[0..<n]))
                } else if p.fd == 0 {
                    let n = buf.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 {
                        stdinOpen = false
                        if closeOnStdinEOF { connection.closeWrite() }
                        continue
                    }
                    for b in buf[0..<n] where !detachSequence.isEmpty {
                        matched = b == detachSequence[matched % detachSequence.count] ? matched % detachSequence.count + 1
                            : (b == detachSequence[0] ? 1 : 0)
                    }
                    // The container may be gone already; the output side reports the end.
                    try? connection.write(Array(buf[0..<n]))
                } else {
                    for signo in SignalPipe.drain() { onSignal(signo) }
                }
            }
        }
    }
}
