import BerthOS
import Dispatch
import Glibc
import Synchronization

/// Learns that containers exited without polling: one inotify descriptor watches every running
/// container's monitor directory for the `exit.json` its berth-monitor renames into place, on
/// one thread for all containers. Once a second it also checks that each monitor is alive: one
/// that died without writing `exit.json` leaves its container unwatched.
final class ExitWatcher: Sendable {
    enum Event: Sendable { case exited, monitorLost }

    private struct Watched {
        var id: String
        var directory: String
        var monitorPid: Int32
    }

    private let fd: Int32
    private let watched = Mutex<[Int32: Watched]>([:])
    private let continuation: AsyncStream<(id: String, event: Event)>.Continuation
    /// Each watched container's exit, once.
    let events: AsyncStream<(id: String, event: Event)>

    init() {
        fd = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        (events, continuation) = AsyncStream.makeStream()
        guard fd >= 0 else { return }
        // A dedicated thread for the life of the daemon: it blocks in poll().
        DispatchQueue(label: "berth.exit-watcher").async { [self] in run() }
    }

    /// Reports the exit of the container whose monitor writes into `directory`.
    func watch(id: String, directory: String, monitorPid: Int32) {
        let wd = inotify_add_watch(fd, directory, UInt32(IN_MOVED_TO | IN_CREATE))
        guard wd >= 0 else {
            // No inotify (or no directory): let the caller's view of the monitor decide.
            continuation.yield((id, access(directory + "/exit.json", F_OK) == 0 ? .exited : .monitorLost))
            return
        }
        watched.withLock { $0[wd] = Watched(id: id, directory: directory, monitorPid: monitorPid) }
        // The container may have exited before the watch existed.
        if access(directory + "/exit.json", F_OK) == 0 { fire(wd, .exited) }
    }

    /// Reports `event` once per watch: a later inotify event or liveness check finds it gone.
    private func fire(_ wd: Int32, _ event: Event) {
        guard let entry = watched.withLock({ $0.removeValue(forKey: wd) }) else { return }
        inotify_rm_watch(fd, wd)
        continuation.yield((entry.id, event))
    }

    private func run() {
        var buffer = [UInt8](repeating: 0, count: 16384)
        var lastCheck = monotonicSeconds()
        while true {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&pfd, 1, 1000)
            while true {
                let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                guard n > 0 else { break }
                var offset = 0
                while offset + MemoryLayout<inotify_event>.size <= n {
                    let (wd, nameLength, name) = buffer.withUnsafeBytes { raw -> (Int32, Int, String) in
                        let event = raw.loadUnaligned(fromByteOffset: offset, as: inotify_event.self)
                        let start = offset + MemoryLayout<inotify_event>.size
                        let bytes = raw[start..<(start + Int(event.len))].prefix { $0 != 0 }
                        return (event.wd, Int(event.len), String(decoding: bytes, as: UTF8.self))
                    }
                    if name == "exit.json" { fire(wd, .exited) }
                    offset += MemoryLayout<inotify_event>.size + nameLength
                }
            }
            if monotonicSeconds() - lastCheck >= 1 {
                lastCheck = monotonicSeconds()
                let lost = watched.withLock { entries in
                    entries.filter { $0.value.monitorPid > 0 && kill($0.value.monitorPid, 0) != 0 && errno == ESRCH }
                }
                for (wd, entry) in lost {
                    fire(wd, access(entry.directory + "/exit.json", F_OK) == 0 ? .exited : .monitorLost)
                }
            }
        }
    }
}
