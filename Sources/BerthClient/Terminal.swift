import Glibc

/// The local terminal: raw mode for interactive sessions and its size for resizes.
public enum Terminal {
    public static func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

    /// Rows and columns of the terminal on `fd`; nil when it is not one.
    public static func size(_ fd: Int32) -> (rows: Int, columns: Int)? {
        var ws = winsize()
        guard ioctl(fd, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_row > 0 || ws.ws_col > 0 else { return nil }
        return (Int(ws.ws_row), Int(ws.ws_col))
    }

    /// Puts the terminal in raw mode and returns the settings to restore.
    public static func makeRaw(_ fd: Int32) -> termios? {
        var saved = termios()
        guard tcgetattr(fd, &saved) == 0 else { return nil }
        var raw = saved
        cfmakeraw(&raw)
        guard tcsetattr(fd, TCSANOW, &raw) == 0 else { return nil }
        return saved
    }

    public static func restore(_ fd: Int32, _ saved: termios) {
        var saved = saved
        tcsetattr(fd, TCSANOW, &saved)
    }
}

/// Signals delivered through a pipe, so one poll() loop sees them beside the sockets
/// (Glibc exposes no signalfd to Swift).
public enum SignalPipe {
    /// The pipe's write end, set once before any handler is installed; handlers only read it.
    nonisolated(unsafe) private static var writeEnd: Int32 = -1
    nonisolated(unsafe) private static var readEnd: Int32 = -1

    /// Routes `signals` into the pipe and returns its read end; each byte read is a signal number.
    public static func install(_ signals: [Int32]) -> Int32 {
        if readEnd < 0 {
            var fds: [Int32] = [-1, -1]
            guard pipe(&fds) == 0 else { return -1 }
            for fd in fds {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            }
            readEnd = fds[0]
            writeEnd = fds[1]
        }
        for s in signals {
            signal(s) { signo in
                var byte = UInt8(truncatingIfNeeded: signo)
                _ = Glibc.write(SignalPipe.writeEnd, &byte, 1)
            }
        }
        return readEnd
    }

    /// Pending signal numbers, without blocking.
    public static func drain() -> [Int32] {
        var out: [Int32] = []
        var byte: UInt8 = 0
        while readEnd >= 0, read(readEnd, &byte, 1) == 1 { out.append(Int32(byte)) }
        return out
    }
}

/// Writes all of `bytes` to `fd` (stdout, stderr), retrying short writes.
public func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    var off = 0
    while off < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
        if n < 0 {
            if errno == EINTR { continue }
            return
        }
        off += n
    }
}

public func writeAll(_ fd: Int32, _ text: String) { writeAll(fd, Array(text.utf8)) }
