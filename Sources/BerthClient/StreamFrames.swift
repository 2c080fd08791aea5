/// Docker's multiplexed stream (attach, logs, exec without a TTY): each frame is one byte naming
/// the stream (0 stdin, 1 stdout, 2 stderr), three zero bytes, a big-endian UInt32 length and
/// the payload. Frames may arrive split across reads or several in one read.
public struct FrameDecoder {
    public struct Frame: Equatable, Sendable {
        public let stream: UInt8
        public let payload: [UInt8]
        public init(stream: UInt8, payload: [UInt8]) {
            self.stream = stream
            self.payload = payload
        }
    }

    private var pending: [UInt8] = []

    public init() {}

    /// The whole frames completed by `bytes`; the rest waits for the next call.
    public mutating func feed(_ bytes: [UInt8]) -> [Frame] {
        pending += bytes
        var frames: [Frame] = []
        var at = 0
        while pending.count - at >= 8 {
            let length = pending[(at + 4)..<(at + 8)].reduce(0) { $0 << 8 | Int($1) }
            guard pending.count - at >= 8 + length else { break }
            frames.append(Frame(stream: pending[at], payload: Array(pending[(at + 8)..<(at + 8 + length)])))
            at += 8 + length
        }
        pending.removeFirst(at)
        return frames
    }

    /// True when a partial frame is left over (the stream ended mid-frame).
    public var hasPartialFrame: Bool { !pending.isEmpty }
}
