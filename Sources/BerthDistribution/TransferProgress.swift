/// One progress message of a pull or push, as plain values; the API writes it as Docker's
/// JSON message (`{"status","id","progressDetail","progress"}`).
public struct TransferProgress: Sendable, Equatable {
    /// Short layer ID (12 hex digits), or a tag for `Pulling from`; nil for whole-image lines.
    public var id: String?
    /// `Pulling fs layer`, `Downloading`, `Pull complete`, `Digest: sha256:…`, ...
    public var status: String
    public var current: Int64?
    public var total: Int64?
    /// The result of a push, sent as Docker's `aux` object.
    public var pushed: PushedManifest?

    public init(id: String? = nil, status: String, current: Int64? = nil, total: Int64? = nil, pushed: PushedManifest? = nil) {
        self.id = id; self.status = status; self.current = current; self.total = total; self.pushed = pushed
    }

    /// Docker's progress bar text (jsonmessage.JSONProgress): a 50-wide bar and the sizes,
    /// `[=====>      ]  1.23MB/4.56MB`; nil without a current byte count.
    public var progressText: String? {
        guard let current else { return nil }
        let sizes = Self.humanSize(current)
        guard let total, total > 0 else { return Self.leftPad(sizes, 8) }
        let percent = Int(min(100, max(0, current * 100 / total)))
        let filled = percent / 2
        let bar = "[" + String(repeating: "=", count: filled) + ">" + String(repeating: " ", count: 50 - filled) + "] "
        return bar + Self.leftPad(sizes, 8) + "/" + Self.humanSize(total)
    }

    /// go-units HumanSize: decimal units, three significant digits (`1.23MB`, `512B`, `12.3kB`).
    public static func humanSize(_ bytes: Int64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB", "PB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1000 && unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return threeSignificant(value) + units[unit]
    }

    /// `%.3g` for the values humanSize produces (0 ≤ v < 1000).
    static func threeSignificant(_ v: Double) -> String {
        let decimals = v >= 100 ? 0 : v >= 10 ? 1 : 2
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let rounded = (v * scale).rounded() / scale
        if rounded >= 1000 { return "1e+03" }
        let whole = Int64(rounded)
        var fraction = Int64(((rounded - Double(whole)) * scale).rounded())
        var text = String(whole)
        if decimals > 0 && fraction > 0 {
            var digits = String(fraction)
            while digits.count < decimals { digits = "0" + digits }
            while digits.hasSuffix("0") { digits.removeLast(); fraction /= 10 }
            text += "." + digits
        }
        return text
    }

    static func leftPad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
    }
}

/// What a push ends with: the tag, the manifest's digest and size (Docker's `aux` of push).
public struct PushedManifest: Sendable, Equatable {
    public var tag: String
    public var digest: String
    public var size: Int
    public init(tag: String, digest: String, size: Int) { self.tag = tag; self.digest = digest; self.size = size }
}
