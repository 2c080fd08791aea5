import Glibc

/// Owns the C memory a `berth_plan` points into, for as long as the spawn takes.
final class Arena {
    private var blocks: [UnsafeMutableRawPointer] = []

    deinit { for b in blocks { free(b) } }

    func string(_ s: String?) -> UnsafePointer<CChar>? {
        guard let s else { return nil }
        let p = strdup(s)!
        blocks.append(UnsafeMutableRawPointer(p))
        return UnsafePointer(p)
    }

    /// A NULL-terminated array of C strings.
    func strings(_ items: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> {
        let p = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: items.count + 1)
        blocks.append(UnsafeMutableRawPointer(p))
        for (i, s) in items.enumerated() { p[i] = UnsafeMutablePointer(mutating: string(s)) }
        p[items.count] = nil
        return p
    }

    func constStrings(_ items: [String]) -> UnsafePointer<UnsafePointer<CChar>?> {
        UnsafeRawPointer(strings(items)).assumingMemoryBound(to: UnsafePointer<CChar>?.self)
    }

    func array<T>(_ items: [T]) -> UnsafePointer<T>? {
        guard !items.isEmpty else { return nil }
        let p = UnsafeMutablePointer<T>.allocate(capacity: items.count)
        blocks.append(UnsafeMutableRawPointer(p))
        p.initialize(from: items, count: items.count)
        return UnsafePointer(p)
    }

    func bytes(_ items: [UInt8]) -> UnsafeRawPointer? {
        guard !items.isEmpty else { return nil }
        let p = malloc(items.count)!
        blocks.append(p)
        items.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: items.count) }
        return UnsafeRawPointer(p)
    }
}
