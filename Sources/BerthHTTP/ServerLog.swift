/// Where the server reports what happens: a sink the daemon formats (text or JSON lines).
/// The server only decides what is worth saying and at which level.
public struct ServerLog: Sendable {
    public enum Level: Int, Sendable, Comparable, CustomStringConvertible {
        case debug, info, warning, error

        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }

        public var description: String {
            switch self {
            case .debug: "debug"
            case .info: "info"
            case .warning: "warning"
            case .error: "error"
            }
        }
    }

    public typealias Fields = [(key: String, value: String)]

    public let minimumLevel: Level
    private let sink: @Sendable (Level, String, Fields) -> Void

    public init(minimumLevel: Level = .info, sink: @escaping @Sendable (Level, String, Fields) -> Void) {
        self.minimumLevel = minimumLevel
        self.sink = sink
    }

    /// Says nothing; for tests and embedders that log elsewhere.
    public static let discard = ServerLog(minimumLevel: .error) { _, _, _ in }

    public func callAsFunction(_ level: Level, _ message: @autoclosure () -> String, _ fields: @autoclosure () -> Fields = []) {
        if level >= minimumLevel { sink(level, message(), fields()) }
    }

    public func debug(_ message: @autoclosure () -> String, _ fields: @autoclosure () -> Fields = []) { self(.debug, message(), fields()) }
    public func info(_ message: @autoclosure () -> String, _ fields: @autoclosure () -> Fields = []) { self(.info, message(), fields()) }
    public func warning(_ message: @autoclosure () -> String, _ fields: @autoclosure () -> Fields = []) { self(.warning, message(), fields()) }
    public func error(_ message: @autoclosure () -> String, _ fields: @autoclosure () -> Fields = []) { self(.error, message(), fields()) }
}
