import BerthOS
import FoundationEssentials
import Glibc

/// One entry of `GET /events`: Docker's `events.Message` as plain values.
public struct EngineEvent: Sendable {
    /// `container`, `image`, `volume`, `network`, `daemon`.
    public var type: String
    /// `create`, `start`, `die`, `destroy`, `health_status: healthy`, `tag`, ...
    public var action: String
    public var actorID: String
    public var attributes: [String: String]
    /// Nanoseconds since the epoch.
    public var timeNano: Int64
}

/// Recent events kept for `since`, and the live subscribers of `/events`.
struct EventLog {
    static let capacity = 1024
    var recent: [EngineEvent] = []
    var subscribers: [UInt64: AsyncStream<EngineEvent>.Continuation] = [:]
    var nextSubscriber: UInt64 = 0

    mutating func append(_ event: EngineEvent) {
        recent.append(event)
        if recent.count > Self.capacity { recent.removeFirst(recent.count - Self.capacity) }
        for continuation in subscribers.values { continuation.yield(event) }
    }
}

extension Engine {
    /// Publishes an event to `/events` subscribers and the `since` history.
    func publish(_ type: String, _ action: String, id: String, attributes: [String: String] = [:]) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        events.append(EngineEvent(type: type, action: action, actorID: id, attributes: attributes,
                                  timeNano: Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)))
    }

    /// A container event with Docker's attributes: the container's labels, `image` and `name`.
    func publish(container rec: ContainerRecord, _ action: String, extra: [String: String] = [:]) {
        var attributes = rec.config.labels ?? [:]
        attributes["image"] = rec.image
        attributes["name"] = String(rec.name.dropFirst())
        attributes.merge(extra) { _, new in new }
        publish("container", action, id: rec.id, attributes: attributes)
    }

    /// Past events newer than `sinceNano` (all kept ones when nil), then, unless `sinceNano` and
    /// `untilNano` bound it to the past, the live ones until the stream is dropped or `untilNano`.
    public func subscribe(sinceNano: Int64?, untilNano: Int64?) -> AsyncStream<EngineEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: EngineEvent.self, bufferingPolicy: .bufferingNewest(4096))
        if let sinceNano {
            for event in events.recent where event.timeNano >= sinceNano && (untilNano.map { event.timeNano <= $0 } ?? true) {
                continuation.yield(event)
            }
        }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let nowNano = Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
        if let untilNano, untilNano <= nowNano {
            continuation.finish()
            return stream
        }
        let key = events.nextSubscriber
        events.nextSubscriber += 1
        events.subscribers[key] = continuation
        continuation.onTermination = { _ in Task { await self.unsubscribe(key) } }
        if let untilNano {
            Task {
                try? await Task.sleep(for: .nanoseconds(untilNano - nowNano))
                continuation.finish()
            }
        }
        return stream
    }

    func unsubscribe(_ key: UInt64) {
        events.subscribers[key] = nil
    }
}
