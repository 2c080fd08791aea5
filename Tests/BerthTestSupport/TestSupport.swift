import BerthOS
import Dispatch
import Glibc
import Synchronization

/// Helpers the server test targets share (a test target cannot import another one).
public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A directory under /tmp removed with everything in it when released.
public final class TemporaryDirectory {
    public let path: String

    public init(prefix: String = "berth-test") throws {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw TestFailure("mkdtemp failed") }
        path = String(cString: p)
    }

    deinit { try? FileSystem.removeTree(path) }
}

extension String {
    public func write(toFile path: String) throws {
        try FileSystem.writeAtomically(path, Array(utf8))
    }
}

/// Runs async code from a synchronous test. The tests talk to the server with blocking socket
/// calls, which must not sit on the cooperative pool that the route handlers need.
@discardableResult
public func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let result = Mutex<Result<T, any Error>?>(nil)
    let done = DispatchSemaphore(value: 0)
    Task {
        let r: Result<T, any Error>
        do { r = .success(try await body()) } catch { r = .failure(error) }
        result.withLock { $0 = r }
        done.signal()
    }
    done.wait()
    return try result.withLock { $0! }.get()
}
