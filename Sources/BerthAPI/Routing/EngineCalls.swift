import BerthEngine
import Glibc
import NIOCore

/// Runs an engine call, turning `EngineError` into Docker's status and message.
func mapped<T: Sendable>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as EngineError {
        switch error.code {
        case .notFound: throw APIError.notFound(error.message)
        case .conflict: throw APIError.conflict(error.message)
        case .invalidArgument: throw APIError.badRequest(error.message)
        case .invalidState: throw APIError.conflict(error.message)
        case .notModified: throw APIError(.notModified, error.message)
        case .notImplemented: throw APIError.notImplemented(error.message)
        case .forbidden: throw APIError(.forbidden, error.message)
        case .system: throw APIError.internalError(error.message)
        }
    }
}

/// 204 on success, 304 (empty) when there was nothing to do.
func orNotModified(_ body: () async throws -> Void) async throws -> Response {
    do {
        try await mapped(body)
        return .noContent()
    } catch let error as APIError where error.status == .notModified {
        return Response(status: .notModified)
    }
}

extension RequestBody {
    /// Writes a request body to a file (image archives are not held in memory).
    static func save(_ body: RequestBody, to path: String) async throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw APIError.internalError("cannot create \(path)") }
        defer { close(fd) }
        for try await buffer in body {
            var rest = buffer
            while rest.readableBytes > 0 {
                let n = rest.withUnsafeReadableBytes { write(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw APIError.internalError("writing \(path) failed") }
                rest.moveReaderIndex(forwardBy: n)
            }
        }
    }
}
