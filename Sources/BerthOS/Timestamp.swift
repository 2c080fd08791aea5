import Glibc

/// Wall-clock time as RFC 3339 with nanoseconds in UTC (Go's `time.RFC3339Nano` shape,
/// `2025-05-30T12:04:43.123456789Z`): what runc, containerd and the Docker API write and parse.
public enum Timestamp {
    public static func now() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return format(seconds: Int(ts.tv_sec), nanoseconds: Int(ts.tv_nsec))
    }

    public static func format(seconds: Int, nanoseconds: Int) -> String {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        func pad(_ n: Int32, _ width: Int) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        let nanos = String(nanoseconds)
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
            + String(repeating: "0", count: max(0, 9 - nanos.count)) + nanos + "Z"
    }

    /// Unix seconds of an RFC 3339 time; nil for Go's zero time or bad input.
    public static func unixSeconds(_ text: String) -> Int64? {
        guard let n = nanoseconds(rfc3339: text), n >= 0 else { return nil }
        return n / 1_000_000_000
    }

    /// The current wall-clock time in nanoseconds since the epoch.
    public static func nowNanoseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// A time as dockerd takes it in a query (Go's `timetypes.GetTimestamp`), in nanoseconds:
    /// unix seconds with an optional fraction (`1700000000.5`, what the docker CLI sends),
    /// RFC 3339 (`2024-01-02T03:04:05.5Z`, an offset, or just the date), or a Go duration
    /// (`10m`, `1h30m`) counted back from `now`.
    public static func nanoseconds(query text: String, now: Int64) -> Int64? {
        if let n = nanoseconds(unix: text) ?? nanoseconds(rfc3339: text) { return n }
        return duration(text).map { now - $0 }
    }

    /// `seconds[.fraction]`, the form the docker CLI sends.
    static func nanoseconds(unix text: String) -> Int64? {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = parts.first, !whole.isEmpty, whole.allSatisfy(\.isASCIIDigit), let seconds = Int64(whole) else { return nil }
        var nanos: Int64 = 0
        if parts.count == 2 {
            guard parts[1].allSatisfy(\.isASCIIDigit), parts[1].count <= 9 else { return nil }
            nanos = Int64(parts[1] + String(repeating: "0", count: 9 - parts[1].count)) ?? 0
        }
        return seconds * 1_000_000_000 + nanos
    }

    /// RFC 3339 and its shorter forms; a time without a zone is taken as UTC.
    public static func nanoseconds(rfc3339 text: String) -> Int64? {
        let u = Array(text.utf8)
        func number(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= u.count else { return nil }
            var v = 0
            for c in u[from..<(from + count)] {
                guard c >= 48 && c <= 57 else { return nil }
                v = v * 10 + Int(c - 48)
            }
            return v
        }
        guard let year = number(0, 4), u.count >= 10, u[4] == 45, let month = number(5, 2), u[7] == 45,
              let day = number(8, 2) else { return nil }
        var hour = 0, minute = 0, second = 0, nanos: Int64 = 0, offset = 0
        var i = 10
        if i < u.count {
            guard u[i] == 84 || u[i] == 116, let h = number(11, 2), u.count > 13, u[13] == 58, let m = number(14, 2) else { return nil }
            hour = h; minute = m; i = 16
            if i < u.count, u[i] == 58 {
                guard let s = number(17, 2) else { return nil }
                second = s; i = 19
                if i < u.count, u[i] == 46 {
                    i += 1
                    var digits = 0
                    while i < u.count, u[i] >= 48, u[i] <= 57 {
                        if digits < 9 { nanos = nanos * 10 + Int64(u[i] - 48) }
                        digits += 1; i += 1
                    }
                    guard digits > 0 else { return nil }
                    for _ in min(digits, 9)..<9 { nanos *= 10 }
                }
            }
            if i < u.count {
                if u[i] == 90 || u[i] == 122 {
                    i += 1
                } else if u[i] == 43 || u[i] == 45, let oh = number(i + 1, 2), i + 3 < u.count, u[i + 3] == 58,
                          let om = number(i + 4, 2) {
                    offset = (oh * 3600 + om * 60) * (u[i] == 43 ? 1 : -1)
                    i += 6
                } else {
                    return nil
                }
            }
            guard i == u.count else { return nil }
        }
        guard (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        var t = tm()
        t.tm_year = Int32(year - 1900); t.tm_mon = Int32(month - 1); t.tm_mday = Int32(day)
        t.tm_hour = Int32(hour); t.tm_min = Int32(minute); t.tm_sec = Int32(second)
        return (Int64(timegm(&t)) - Int64(offset)) * 1_000_000_000 + nanos
    }

    /// Go's `time.ParseDuration` (`300ms`, `1.5h`, `2h45m`), in nanoseconds.
    public static func duration(_ text: String) -> Int64? {
        var s = Substring(text)
        var sign: Double = 1
        if s.first == "-" || s.first == "+" {
            if s.first == "-" { sign = -1 }
            s = s.dropFirst()
        }
        if s == "0" { return 0 }
        guard !s.isEmpty else { return nil }
        let units: [(String, Double)] = [("ns", 1), ("us", 1e3), ("µs", 1e3), ("μs", 1e3), ("ms", 1e6),
                                         ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
        var total: Double = 0
        while !s.isEmpty {
            let number = s.prefix { $0.isASCIIDigit || $0 == "." }
            guard !number.isEmpty, number != ".", let value = Double(number) else { return nil }
            s = s.dropFirst(number.count)
            let unitText = s.prefix { !$0.isASCIIDigit && $0 != "." }
            guard let unit = units.first(where: { $0.0 == unitText }) else { return nil }
            s = s.dropFirst(unitText.count)
            total += value * unit.1
        }
        return Int64(sign * total)
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
