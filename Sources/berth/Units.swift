import BerthOS
import Glibc

/// Sizes, durations and times in the spellings docker (go-units, Go's time package) uses.
enum Units {
    /// go-units `RAMInBytes`: `512m`, `1g`, `1.5GiB`, `100` (bytes); binary multiples.
    static func ramInBytes(_ text: String) -> Int64? {
        var s = Substring(text.lowercased())
        guard let firstNonDigit = s.firstIndex(where: { !$0.isNumber && $0 != "." }) else {
            return Double(s).map { Int64($0) }
        }
        guard let number = Double(s[..<firstNonDigit]) else { return nil }
        s = s[firstNonDigit...].drop(while: { $0 == " " })
        let multipliers: [Character: Double] = ["k": 0x1p10, "m": 0x1p20, "g": 0x1p30, "t": 0x1p40, "p": 0x1p50]
        var multiplier = 1.0
        if let c = s.first, let m = multipliers[c] {
            multiplier = m
            s = s.dropFirst()
            if s.first == "i" { s = s.dropFirst() }
        }
        if s == "b" { s = s.dropFirst() }
        guard s.isEmpty else { return nil }
        return Int64(number * multiplier)
    }

    /// Go's `time.ParseDuration` in seconds: `1h2m3.5s`, `300ms`, `10us`; nil when malformed.
    static func duration(_ text: String) -> Double? {
        var s = Substring(text)
        var sign = 1.0
        if s.first == "-" || s.first == "+" {
            sign = s.first == "-" ? -1 : 1
            s = s.dropFirst()
        }
        if s == "0" { return 0 }
        guard !s.isEmpty else { return nil }
        let units: [(String, Double)] = [("ns", 1e-9), ("us", 1e-6), ("µs", 1e-6), ("μs", 1e-6), ("ms", 1e-3),
                                         ("s", 1), ("m", 60), ("h", 3600)]
        var total = 0.0
        while !s.isEmpty {
            let numberEnd = s.firstIndex(where: { !$0.isNumber && $0 != "." }) ?? s.endIndex
            guard let n = Double(s[..<numberEnd]) else { return nil }
            s = s[numberEnd...]
            let unitEnd = s.firstIndex(where: { $0.isNumber || $0 == "." }) ?? s.endIndex
            let unit = String(s[..<unitEnd])
            guard let scale = units.first(where: { $0.0 == unit })?.1 else { return nil }
            total += n * scale
            s = s[unitEnd...]
        }
        return sign * total
    }

    /// go-units `HumanDuration`, as in "Up 3 minutes" and "2 hours ago".
    static func humanDuration(seconds: Double) -> String {
        let s = Int(seconds)
        if s < 1 { return "Less than a second" }
        if s == 1 { return "1 second" }
        if s < 60 { return "\(s) seconds" }
        let minutes = s / 60
        if minutes == 1 { return "About a minute" }
        if minutes < 60 { return "\(minutes) minutes" }
        let hours = Int((seconds / 3600).rounded())
        if hours == 1 { return "About an hour" }
        if hours < 48 { return "\(hours) hours" }
        if hours < 24 * 7 * 2 { return "\(hours / 24) days" }
        if hours < 24 * 30 * 2 { return "\(hours / 24 / 7) weeks" }
        if hours < 24 * 365 * 2 { return "\(hours / 24 / 30) months" }
        return "\(Int(seconds / 3600) / 24 / 365) years"
    }

    /// go-units `HumanSizeWithPrecision(size, 3)`: decimal units, three significant digits
    /// (`4.26MB`, `0B`, `12.3kB`).
    static func humanSize(_ bytes: Double, precision: Int = 3) -> String {
        let abbrs = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
        var size = bytes, i = 0
        while size >= 1000 && i < abbrs.count - 1 {
            size /= 1000
            i += 1
        }
        return significant(size, precision) + abbrs[i]
    }

    /// go-units `BytesSize`: binary units with up to four significant digits (`1.5GiB`).
    static func bytesSize(_ bytes: Double) -> String {
        let abbrs = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]
        var size = bytes, i = 0
        while size >= 1024 && i < abbrs.count - 1 {
            size /= 1024
            i += 1
        }
        return significant(size, 4) + abbrs[i]
    }

    /// `%.{p}g` for the non-negative values sizes produce: rounded to `p` significant digits,
    /// trailing zeros dropped.
    static func significant(_ value: Double, _ p: Int) -> String {
        guard value > 0 else { return "0" }
        let exponent = Int(log10(value).rounded(.down))
        let decimals = max(0, p - 1 - exponent)
        let scale = pow(10.0, Double(decimals))
        let rounded = (value * scale).rounded() / scale
        if decimals == 0 { return String(Int(rounded)) }
        var text = String(Int(rounded))
        let fraction = Int(((rounded - rounded.rounded(.down)) * scale).rounded())
        if fraction > 0 {
            var digits = String(fraction)
            digits = String(repeating: "0", count: decimals - digits.count) + digits
            while digits.last == "0" { digits.removeLast() }
            text += "." + digits
        }
        return text
    }

    /// docker's `GetTimestamp` for `--since`/`--until`: a Go duration is that long before now, an
    /// RFC 3339 date or `YYYY-MM-DD` is converted, a Unix timestamp passes as it is.
    static func timestamp(_ text: String, now: Double) -> String? {
        if let d = duration(text) {
            let t = now - d
            let whole = Int64(t.rounded(.down))
            let nanos = String(Int64((t - Double(whole)) * 1e9))
            return "\(whole).\(String(repeating: "0", count: max(0, 9 - nanos.count)) + nanos)"
        }
        if text.contains("-") {
            let withTime = text.contains("T") ? text : text + "T00:00:00Z"
            return Timestamp.unixSeconds(withTime).map(String.init)
        }
        guard !text.isEmpty, text.allSatisfy({ $0.isNumber || $0 == "." }) else { return nil }
        return text
    }

    /// Go's `time.Time.String()` in local time: `2025-05-30 12:04:43 +0000 UTC`.
    static func goTime(unix seconds: Int64) -> String {
        var t = time_t(seconds)
        var parts = tm()
        localtime_r(&t, &parts)
        var buf = [CChar](repeating: 0, count: 64)
        let n = strftime(&buf, buf.count, "%Y-%m-%d %H:%M:%S %z %Z", &parts)
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
