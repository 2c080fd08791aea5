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

    /// Unix seconds of an RFC 3339 UTC time (`...Z`); nil for Go's zero time or bad input.
    public static func unixSeconds(_ text: String) -> Int64? {
        let digits = text.split(whereSeparator: { !$0.isNumber }).map { Int($0) ?? 0 }
        guard digits.count >= 6, digits[0] > 1 else { return nil }
        var p = tm()
        p.tm_year = Int32(digits[0] - 1900); p.tm_mon = Int32(digits[1] - 1); p.tm_mday = Int32(digits[2])
        p.tm_hour = Int32(digits[3]); p.tm_min = Int32(digits[4]); p.tm_sec = Int32(digits[5])
        return Int64(timegm(&p))
    }
}
