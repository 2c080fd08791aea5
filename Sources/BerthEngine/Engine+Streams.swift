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
        /// The output, after the record's time and a space when `timestamps` was asked for.
        public var bytes: [UInt8]
    }

    /// What `GET /containers/{id}/logs` selects.
    public struct LogOptions: Sendable, Equatable {
        public var follow = false
        public var stdout = true
        public var stderr = true
        /// Prefix each record with its RFC 3339 time (nine fraction digits) and a space.
        public var timestamps = false
        /// The last N records before `since`/`until` apply (Docker's order); nil for all.
        public var tail: Int?
        /// Nanoseconds since the epoch, both inclusive; nil when unbounded.
        public var sinceNano: Int64?
        public var untilNano: Int64?

        public init() {}

        /// From the query's text as dockerd reads it: `tail` is `all` or N (anything else, or a
        /// negative N, means all); `since`/`until` are times in any `DockerTime` form, 0 for none.
        public init(follow: Bool, stdout: Bool, stderr: Bool, timestamps: Bool, tail: String?,
                    since: String?, until: String?, now: Int64) throws(EngineError) {
            self.follow = follow
            self.stdout = stdout
            self.stderr = stderr
            self.timestamps = timestamps
            self.tail = tail.flatMap { Int($0) }.flatMap { $0 < 0 ? nil : $0 }
            func time(_ text: String?, _ name: String) throws(EngineError) -> Int64? {
                guard let text, !text.isEmpty, text != "0" else { return nil }
                do { return try DockerTime.nanoseconds(text, now: now) } catch {
                    throw EngineError(.invalidArgument, "invalid value for \(name): \(error.message)")
                }
            }
            sinceNano = try time(since, "since")
            untilNano = try time(until, "until")
        }
    }

    /// The container's json-file log, rotated files included; with `follow`, also what it
    /// writes until it stops (or `until` passes).
    public func logs(_ ref: String, options: LogOptions) throws(EngineError) -> (tty: Bool, records: AsyncThrowingStream<LogRecord, any Error>) {
        let id = try resolve(ref)
        let rec = containers[id]!
        if rec.hostConfig.logConfig?.type == "none" {
            throw EngineError(.notImplemented, "configured logging driver does not support reading")
        }
        let dir = monitorDir(id)
        let stream = AsyncThrowingStream<LogRecord, any Error> { continuation in
            let task = Task.detached {
                var reader = LogReader(directory: dir, options: options)
                defer { reader.close() }
                while true {
                    let running = await self.isRunning(id)
                    let more = reader.readAvailable { continuation.yield($0) }
                    guard more, options.follow, running, !Task.isCancelled else { break }
                    if let until = options.untilNano, Timestamp.nowNanoseconds() > until { break }
                    try? await Task.sleep(for: .milliseconds(50))
                    reader.followRotation()
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
        return (rec.config.tty == true, stream)
    }

    func isRunning(_ id: String) -> Bool { containers[id]?.running ?? false }
}

/// `LogConfig.Config` of the json-file driver as berth-monitor's rotation flags (Docker's
/// `max-size`, `max-file`; the other options Docker accepts change nothing Berth writes).
struct LogRotation: Equatable {
    var maxSize: Int64?
    var maxFiles: Int?

    static let drivers: Set<String> = ["json-file", "local", "none"]
    static let acceptedOptions: Set<String> = ["max-size", "max-file", "compress", "labels", "labels-regex",
                                               "env", "env-regex", "tag", "mode", "max-buffer-size"]

    init(_ config: DockerHostConfig.LogConfig?) throws(EngineError) {
        let type = config?.type.flatMap { $0.isEmpty ? nil : $0 } ?? "json-file"
        let options = config?.config ?? [:]
        // Berth writes json-file logs; `local` (Docker's compact file driver) is served the same
        // way, and `none` keeps nothing. Any other driver is refused as dockerd refuses one it
        // has not registered, rather than accepted and silently not used.
        guard Self.drivers.contains(type) else {
            throw EngineError(.invalidArgument, "logger: no log driver named '\(type)' is registered")
        }
        guard type != "none" else { return }
        for key in options.keys.sorted() where !Self.acceptedOptions.contains(key) {
            throw EngineError(.invalidArgument, "unknown log opt '\(key)' for json-file log driver")
        }
        if let text = options["max-size"], !text.isEmpty {
            guard let size = Self.ramInBytes(text) else {
                throw EngineError(.invalidArgument, "invalid size: '\(text)'")
            }
            maxSize = size > 0 ? size : nil
        }
        if let text = options["max-file"], !text.isEmpty {
            guard let n = Int(text) else {
                throw EngineError(.invalidArgument, "strconv.Atoi: parsing \"\(text)\": invalid syntax")
            }
            guard n >= 1 else { throw EngineError(.invalidArgument, "max-file cannot be less than 1") }
            maxFiles = n
        }
    }

    var monitorArguments: [String] {
        var args: [String] = []
        if let maxSize { args += ["--log-max-size", String(maxSize)] }
        if let maxFiles, maxSize != nil { args += ["--log-max-files", String(maxFiles)] }
        return args
    }

    /// go-units' `RAMInBytes`: `10m`, `1k`, `1.5g`, `64MiB`, `100`, binary multiples; -1 is no limit.
    static func ramInBytes(_ text: String) -> Int64? {
        if text == "-1" { return -1 }
        var s = Substring(text.lowercased())
        if s.hasSuffix("b") { s = s.dropLast() }
        if s.hasSuffix("i") { s = s.dropLast() }
        let exponents: [Character: Int] = ["k": 1, "m": 2, "g": 3, "t": 4, "p": 5]
        var exponent = 0
        if let last = s.last, let e = exponents[last] {
            exponent = e
            s = s.dropLast()
        }
        if s.hasSuffix(" ") { s = s.dropLast() }
        guard !s.isEmpty, s.allSatisfy({ $0.isNumber || $0 == "." }), let value = Double(s) else { return nil }
        var bytes = value
        for _ in 0..<exponent { bytes *= 1024 }
        return Int64(bytes)
    }
}

/// Reads a json-file log directory: `container.log.N` … `.1` (rotated, oldest first), then
/// `container.log`, from where `tail` says; then, for `follow`, what is appended, switching to
/// the new `container.log` when the monitor rotates. Never holds more than a chunk in memory.
struct LogReader {
    static let chunk = 65536
    let path: String
    let options: Engine.LogOptions
    /// Open files still to read, oldest first; the last is the live `container.log`.
    var files: [Int32] = []
    var offset: Int64 = 0
    var partial: [UInt8] = []
    /// `since` and `until` in the log's own time format, which sorts as text.
    let since: String?
    let until: String?
    var pastUntil = false

    init(directory: String, options: Engine.LogOptions) {
        path = directory + "/container.log"
        self.options = options
        since = options.sinceNano.map(Self.format)
        until = options.untilNano.map(Self.format)
        var rotated: [Int32] = []
        var n = 1
        while true {
            let fd = open(path + ".\(n)", O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { break }
            rotated.append(fd)
            n += 1
        }
        files = rotated.reversed()
        let live = open(path, O_RDONLY | O_CLOEXEC)
        if live >= 0 { files.append(live) }
        if let tail = options.tail {
            let (index, start) = Self.tailStart(files, lines: tail)
            for fd in files[..<index] { Glibc.close(fd) }
            files.removeFirst(index)
            offset = start
        }
    }

    static func format(_ nanos: Int64) -> String {
        Timestamp.format(seconds: Int(nanos / 1_000_000_000), nanoseconds: Int(nanos % 1_000_000_000))
    }

    mutating func close() {
        for fd in files { Glibc.close(fd) }
        files = []
    }

    /// Where the last `lines` complete lines of the files (oldest first) begin: the index of a
    /// file and an offset in it. Scans backwards from the end a chunk at a time.
    static func tailStart(_ files: [Int32], lines: Int) -> (file: Int, offset: Int64) {
        var need = lines
        var buf = [UInt8](repeating: 0, count: chunk)
        for index in files.indices.reversed() {
            var st = stat()
            guard fstat(files[index], &st) == 0 else { continue }
            var end = Int64(st.st_size)
            var found = 0
            while end > 0 {
                let start = max(0, end - Int64(chunk))
                let n = buf.withUnsafeMutableBytes { pread(files[index], $0.baseAddress, Int(end - start), off_t(start)) }
                guard n > 0 else { break }
                for i in stride(from: n - 1, through: 0, by: -1) where buf[i] == 10 {
                    found += 1
                    // The (need+1)-th newline from the end closes the line before the ones we want.
                    if found == need + 1 { return (index, start + Int64(i) + 1) }
                }
                end = start
            }
            if found == need { return (index, 0) }
            need -= found
        }
        return (0, 0)
    }

    /// Hands every complete record now in the files to `emit`; false once `until` has passed.
    mutating func readAvailable(_ emit: (Engine.LogRecord) -> Void) -> Bool {
        var buf = [UInt8](repeating: 0, count: Self.chunk)
        let decoder = JSONDecoder()
        while let fd = files.first, !pastUntil {
            let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                // A rotated file is done; the live one waits for more.
                guard files.count > 1 else { break }
                Glibc.close(files.removeFirst())
                offset = 0
                partial = []
                continue
            }
            offset += Int64(n)
            partial += buf[0..<n]
            var consumed = 0
            while !pastUntil, let nl = partial[consumed...].firstIndex(of: 10) {
                let line = partial[consumed..<nl]
                consumed = nl + 1
                guard let rec = try? decoder.decode(Line.self, from: Data(line)) else { continue }
                if let record = select(rec) { emit(record) }
            }
            partial.removeFirst(consumed)
        }
        return !pastUntil
    }

    struct Line: Decodable {
        var log: String
        var stream: String
        var time: String
    }

    mutating func select(_ line: Line) -> Engine.LogRecord? {
        if let until, line.time > until {
            pastUntil = true
            return nil
        }
        if let since, line.time < since { return nil }
        let stderr = line.stream == "stderr"
        guard stderr ? options.stderr : options.stdout else { return nil }
        let bytes = options.timestamps ? Array((line.time + " ").utf8) + Array(line.log.utf8) : Array(line.log.utf8)
        return Engine.LogRecord(stderr: stderr, bytes: bytes)
    }

    /// After the live file is read to its end: if the monitor rotated it (renamed it away and
    /// started a new one), what remains of the old one is read next, then the new one from its
    /// start; if it started over in place (one file kept), read again from the start.
    mutating func followRotation() {
        guard let fd = files.last else {
            let live = open(path, O_RDONLY | O_CLOEXEC)
            if live >= 0 { files = [live]; offset = 0 }
            return
        }
        var held = stat(), current = stat()
        guard fstat(fd, &held) == 0 else { return }
        if stat(path, &current) == 0, current.st_ino != held.st_ino || current.st_dev != held.st_dev {
            let live = open(path, O_RDONLY | O_CLOEXEC)
            if live >= 0 { files.append(live) }
        } else if files.count == 1, Int64(held.st_size) < offset {
            offset = 0
            partial = []
        }
    }
}
