import NIOCore

/// Docker's detach sequence (`--detach-keys`, the `detachKeys` parameter): comma-separated
/// keys, each one character or `ctrl-@`, `ctrl-a`…`ctrl-z`, `ctrl-[`, `ctrl-\`, `ctrl-]`,
/// `ctrl-^`, `ctrl-_` (moby/term's ToBytes). Default `ctrl-p,ctrl-q`. dockerd watches for it
/// only when the client's stdin goes to a TTY; the keys that form it never reach the container.
struct DetachKeys: Sendable {
    static let defaultSequence: [UInt8] = [16, 17]
    private static let controlNames = ["@"] + "abcdefghijklmnopqrstuvwxyz".map(String.init) + ["[", "\\", "]", "^", "_"]

    let sequence: [UInt8]
    /// How many keys of the sequence the input has matched so far (held back, not forwarded).
    private var matched = 0

    /// Empty text means the default; throws the invalid text itself for the caller's wording.
    init(_ text: String) throws(InvalidDetachKeys) {
        guard !text.isEmpty else {
            sequence = Self.defaultSequence
            return
        }
        var keys: [UInt8] = []
        for key in text.split(separator: ",", omittingEmptySubsequences: false) {
            if key.utf8.count == 1 {
                keys.append(key.utf8.first!)
            } else if key.hasPrefix("ctrl-"), let code = Self.controlNames.firstIndex(of: String(key.dropFirst(5))) {
                keys.append(UInt8(code))
            } else if key == "DEL" {
                keys.append(127)
            } else {
                throw InvalidDetachKeys(text: text)
            }
        }
        sequence = keys
    }

    struct InvalidDetachKeys: Error { let text: String }

    /// Passes input through; returns what to forward to the container and whether the sequence
    /// has just completed (then what followed it in the same read is dropped, as dockerd does).
    mutating func scan(_ bytes: some Sequence<UInt8>) -> (forward: [UInt8], detach: Bool) {
        var forward: [UInt8] = []
        for byte in bytes {
            if byte == sequence[matched] {
                matched += 1
                if matched == sequence.count { return (forward, true) }
                continue
            }
            // Not the sequence after all: what was held back goes on, and this byte may start it.
            forward += sequence[0..<matched]
            matched = 0
            if byte == sequence[0] {
                matched = 1  // a one-key sequence never gets here: the first test took it
            } else {
                forward.append(byte)
            }
        }
        return (forward, false)
    }

    /// Copies a hijacked client's stdin to `write` until it ends (false) or, when `keys` is
    /// given (a TTY), until the client types the detach sequence (true).
    static func copy(_ inbound: AsyncStream<ByteBuffer>, keys: DetachKeys?, to write: ([UInt8]) async -> Void) async -> Bool {
        var keys = keys
        for await buffer in inbound {
            guard var scanner = keys else {
                await write(Array(buffer.readableBytesView))
                continue
            }
            let (forward, detach) = scanner.scan(buffer.readableBytesView)
            keys = scanner
            if !forward.isEmpty { await write(forward) }
            if detach { return true }
        }
        return false
    }
}
