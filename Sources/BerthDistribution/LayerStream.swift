import BerthImages
import BerthOCI
import CBerthSys
import Glibc
import Synchronization

/// Unpacks a layer while it downloads: the downloader feeds the bytes it writes into the
/// content store through a pipe to the unpacker, which decompresses, applies and checks the
/// DiffID on a thread of its own. No second pass over the stored blob. Started by the first
/// bytes fed; a stream never fed (the blob came from another pull) unpacks nothing.
final class LayerStream: Sendable {
    private struct State {
        var writeFD: Int32 = -1
        var consumer: Task<Void, any Error>?
        var broken = false
        var abandoned = false
    }

    private let diffID: Digest
    private let snapshots: Snapshotter
    private let state = Mutex(State())

    init(diffID: Digest, snapshots: Snapshotter) {
        self.diffID = diffID
        self.snapshots = snapshots
    }

    /// Passes bytes on, waiting while the unpacker is behind. After the unpacker failed (it
    /// closed its end) bytes are dropped: `finish` reports its error.
    func feed(_ bytes: [UInt8]) async {
        guard let fd = start() else { return }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n > 0 {
                offset += n
            } else if n < 0 && (errno == EAGAIN || errno == EINTR) {
                try? await Task.sleep(nanoseconds: 100_000)
            } else {
                state.withLock { $0.broken = true }
                return
            }
        }
    }

    /// Ends the stream and waits for the unpacker. True when the layer was unpacked (and its
    /// DiffID checked); false when nothing was fed or the stream was abandoned.
    func finish() async throws -> Bool {
        let (consumer, abandoned) = state.withLock { s -> (Task<Void, any Error>?, Bool) in
            if s.writeFD >= 0 { close(s.writeFD) }
            s.writeFD = -1
            return (s.consumer, s.abandoned)
        }
        guard let consumer, !abandoned else { return false }
        try await consumer.value
        return true
    }

    /// Stops early (a failed or restarted download): the unpacker sees a truncated layer and
    /// discards what it made.
    func abandon() async {
        let consumer = state.withLock { s -> Task<Void, any Error>? in
            if s.writeFD >= 0 { close(s.writeFD) }
            s.writeFD = -1
            s.abandoned = true
            return s.consumer
        }
        _ = try? await consumer?.value
    }

    /// The pipe's write end, making the pipe and starting the unpacker the first time.
    private func start() -> Int32? {
        state.withLock { s -> Int32? in
            if s.broken || s.abandoned { return nil }
            if s.writeFD >= 0 { return s.writeFD }
            guard s.consumer == nil else { return nil }
            var fds: [Int32] = [-1, -1]
            guard berth_pipe_cloexec(&fds) == 0 else {
                s.broken = true
                return nil
            }
            // A larger pipe means fewer wake-ups between downloader and unpacker.
            _ = fcntl(fds[1], 1031 /* F_SETPIPE_SZ */, 1 << 20)
            _ = fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK)
            let (readFD, diffID, snapshots) = (fds[0], diffID, snapshots)
            s.consumer = Task {
                try await blocking {
                    defer { close(readFD) }
                    _ = try snapshots.unpackLayer(diffID, from: readFD)
                }
            }
            s.writeFD = fds[1]
            return s.writeFD
        }
    }
}
