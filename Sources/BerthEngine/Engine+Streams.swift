import BerthImages
import BerthOCI
import BerthOS
import FoundationEssentials
import Glibc

extension Engine {
    // MARK: Attach and logs

    /// A connection to the container's output (and stdin). For a created container it arrives
    /// when the container starts; for a stopped one the stream ends empty.
    public func attach(_ ref: String) throws(EngineError) -> (tty: Bool, connection: AsyncStream<AttachConnection>) {
        let id = try resolve(ref)
        let rec = containers[id]!
        let (stream, continuation) = AsyncStream.makeStream(of: AttachConnection.self)
        switch rec.status {
        case .running:
            continuation.yield(try AttachConnection(path: monitorDir(id) + "/attach.sock"))
            continuation.finish()
        case .created:
            pendingAttaches[id, default: []].append(continuation)
        default:
            continuation.finish()
        }
        return (rec.config.tty == true, stream)
    }

    public struct LogRecord: Sendable {
        public var stderr: Bool
        public var bytes: [UInt8]
    }

    /// The container's log; with `follow`, also what it writes until it stops.
    public func logs(_ ref: String, follow: Bool) throws(EngineError) -> (tty: Bool, records: AsyncThrowingStream<LogRecord, any Error>) {
        let id = try resolve(ref)
        let tty = containers[id]!.config.tty == true
        let path = monitorDir(id) + "/container.log"
        let stream = AsyncThrowingStream<LogRecord, any Error> { continuation in
            let task = Task.detached {
                var reader = LogReader(path: path)
                while true {
                    let running = await self.isRunning(id)
                    for rec in reader.readAvailable() { continuation.yield(rec) }
                    if !follow || !running { break }
                    try? await Task.sleep(for: .milliseconds(50))
                    if Task.isCancelled { break }
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
        return (tty, stream)
    }

    func isRunning(_ id: String) -> Bool { containers[id]?.running ?? false }
}

/// Reads Docker json-file records appended since the last call.
struct LogReader {
    let path: String
    var offset: Int64 = 0
    var partial: [UInt8] = []

    init(path: String) { self.path = path }

    struct Line: Decodable {
        var log: String
        var stream: String
    }

    mutating func readAvailable() -> [Engine.LogRecord] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 65536)
        var out: [Engine.LogRecord] = []
        let decoder = JSONDecoder()
        while true {
            let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            offset += Int64(n)
            partial += buf[0..<n]
            while let nl = partial.firstIndex(of: 10) {
                let line = Array(partial[..<nl])
                partial.removeSubrange(...nl)
                if let rec = try? decoder.decode(Line.self, from: Data(line)) {
                    out.append(Engine.LogRecord(stderr: rec.stream == "stderr", bytes: Array(rec.log.utf8)))
                }
            }
        }
        return out
    }
}
