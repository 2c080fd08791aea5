import BerthEngine
import NIOCore

/// A running container's processes: top, stats, pause/unpause and terminal resize.
public struct ContainerProcessRoutes: Sendable {
    let engine: Engine

    public init(engine: Engine) { self.engine = engine }

    public func register(on router: inout Router) {
        let engine = self.engine

        router.get("/containers/{id}/top") { request in
            let top = try await mapped { try await engine.top(request.parameter("id"), psArgs: request.query["ps_args"] ?? "") }
            return try .json(DockerTopResponse(titles: top.titles, processes: top.processes))
        }

        router.get("/containers/{id}/stats") { request in
            let id = request.parameter("id")
            let stream = request.query.bool("stream", default: true)
            let oneShot = request.query.bool("one-shot")
            guard !oneShot || !stream else { throw APIError.badRequest("cannot have stream=true and one-shot=true") }
            // Read before the response, so an unknown container is a 404.
            let first = try await mapped { try await engine.stats(id) }
            return .stream(contentType: "application/json") { out in
                let running = first.read != DockerStatsJSON.zeroTime
                if !stream {
                    // Without one-shot dockerd reads twice, a second apart, so that the CPU
                    // figures have something to compare with.
                    guard running, !oneShot else {
                        try await out.writeJSON(DockerStatsJSON(first, previous: nil))
                        return
                    }
                    try await Task.sleep(for: .seconds(1))
                    try await out.writeJSON(DockerStatsJSON(try await mapped { try await engine.stats(id) }, previous: first))
                    return
                }
                // One a second until the container stops (or is removed: the error ends it).
                var current = first
                var previous: ContainerStatsSample?
                while true {
                    try await out.writeJSON(DockerStatsJSON(current, previous: previous))
                    if current.read == DockerStatsJSON.zeroTime { return }
                    try await Task.sleep(for: .seconds(1))
                    previous = current
                    current = try await mapped { try await engine.stats(id) }
                }
            }
        }

        router.post("/containers/{id}/pause") { request in
            try await mapped { try await engine.pause(request.parameter("id")) }
            return .noContent()
        }

        router.post("/containers/{id}/unpause") { request in
            try await mapped { try await engine.unpause(request.parameter("id")) }
            return .noContent()
        }

        router.post("/containers/{id}/resize") { request in
            let size = try ExecRoutes.terminalSize(request.query)
            try await mapped { try await engine.resize(request.parameter("id"), size) }
            return Response(status: .ok)
        }
    }
}

struct DockerTopResponse: Encodable, Sendable {
    var titles: [String]
    var processes: [[String]]
    enum CodingKeys: String, CodingKey { case titles = "Titles", processes = "Processes" }
}

/// One document of `GET /containers/{id}/stats` (Docker's `StatsResponse`, Linux fields).
struct DockerStatsJSON: Encodable, Sendable {
    static let zeroTime = "0001-01-01T00:00:00Z"

    struct CPUUsage: Encodable, Sendable {
        var total: UInt64
        var perCPU: [UInt64]?
        var kernel: UInt64
        var user: UInt64
        enum CodingKeys: String, CodingKey {
            case total = "total_usage", perCPU = "percpu_usage", kernel = "usage_in_kernelmode", user = "usage_in_usermode"
        }
    }

    struct Throttling: Encodable, Sendable {
        var periods: UInt64
        var throttledPeriods: UInt64
        var throttledTime: UInt64
        enum CodingKeys: String, CodingKey {
            case periods, throttledPeriods = "throttled_periods", throttledTime = "throttled_time"
        }
    }

    struct CPU: Encodable, Sendable {
        var usage: CPUUsage
        var system: UInt64?
        var onlineCPUs: Int?
        var throttling: Throttling
        enum CodingKeys: String, CodingKey {
            case usage = "cpu_usage", system = "system_cpu_usage", onlineCPUs = "online_cpus", throttling = "throttling_data"
        }

        init(_ s: ContainerStatsSample?) {
            usage = CPUUsage(total: s?.cpuTotal ?? 0, perCPU: (s?.cpuPerCPU).flatMap { $0.isEmpty ? nil : $0 },
                             kernel: s?.cpuKernel ?? 0, user: s?.cpuUser ?? 0)
            // Zero values are left out, as Go's omitempty does.
            system = s.flatMap { $0.systemCPU == 0 ? nil : $0.systemCPU }
            onlineCPUs = s.flatMap { $0.onlineCPUs == 0 ? nil : $0.onlineCPUs }
            throttling = Throttling(periods: s?.throttlingPeriods ?? 0, throttledPeriods: s?.throttledPeriods ?? 0,
                                    throttledTime: s?.throttledTime ?? 0)
        }
    }

    struct Memory: Encodable, Sendable {
        var usage: UInt64?
        var maxUsage: UInt64?
        var stats: [String: UInt64]?
        var failcnt: UInt64?
        var limit: UInt64?
        enum CodingKeys: String, CodingKey { case usage, maxUsage = "max_usage", stats, failcnt, limit }
    }

    struct Pids: Encodable, Sendable {
        var current: UInt64?
        var limit: UInt64?
    }

    struct BlkioEntry: Encodable, Sendable {
        var major: UInt64
        var minor: UInt64
        var op: String
        var value: UInt64
    }

    /// Lists Berth does not measure are null, as dockerd sends them when empty.
    struct Blkio: Encodable, Sendable {
        var serviceBytes: [BlkioEntry]?
        var serviced: [BlkioEntry]?

        enum CodingKeys: String, CodingKey {
            case serviceBytes = "io_service_bytes_recursive", serviced = "io_serviced_recursive"
            case queue = "io_queue_recursive", serviceTime = "io_service_time_recursive"
            case waitTime = "io_wait_time_recursive", merged = "io_merged_recursive", time = "io_time_recursive"
            case sectors = "sectors_recursive"
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(serviceBytes, forKey: .serviceBytes)
            try c.encode(serviced, forKey: .serviced)
            for key in [CodingKeys.queue, .serviceTime, .waitTime, .merged, .time, .sectors] { try c.encodeNil(forKey: key) }
        }
    }

    struct Empty: Encodable, Sendable {}

    struct Network: Encodable, Sendable {
        var rxBytes: UInt64, rxPackets: UInt64, rxErrors: UInt64, rxDropped: UInt64
        var txBytes: UInt64, txPackets: UInt64, txErrors: UInt64, txDropped: UInt64
        enum CodingKeys: String, CodingKey {
            case rxBytes = "rx_bytes", rxPackets = "rx_packets", rxErrors = "rx_errors", rxDropped = "rx_dropped"
            case txBytes = "tx_bytes", txPackets = "tx_packets", txErrors = "tx_errors", txDropped = "tx_dropped"
        }
    }

    var name: String
    var id: String
    var read: String
    var preread: String
    var pids: Pids
    var blkio: Blkio
    var numProcs = 0
    var storage = Empty()
    var cpu: CPU
    var precpu: CPU
    var memory: Memory
    /// Absent when the container has no interface but loopback (dockerd omits it too).
    var networks: [String: Network]?

    enum CodingKeys: String, CodingKey {
        case name, id, read, preread, pids = "pids_stats", blkio = "blkio_stats", numProcs = "num_procs"
        case storage = "storage_stats", cpu = "cpu_stats", precpu = "precpu_stats", memory = "memory_stats"
        case networks
    }

    init(_ s: ContainerStatsSample, previous: ContainerStatsSample?) {
        name = s.name
        id = s.id
        read = s.read
        preread = previous?.read ?? Self.zeroTime
        let running = s.read != Self.zeroTime
        pids = running ? Pids(current: s.pidsCurrent, limit: s.pidsLimit) : Pids()
        func entries(_ list: [ContainerStatsSample.BlockIO]) -> [BlkioEntry]? {
            list.isEmpty ? nil : list.map { BlkioEntry(major: $0.major, minor: $0.minor, op: $0.op, value: $0.value) }
        }
        blkio = Blkio(serviceBytes: entries(s.ioServiceBytes), serviced: entries(s.ioServiced))
        cpu = CPU(running ? s : nil)
        precpu = CPU(previous)
        memory = running
            ? Memory(usage: s.memoryUsage, maxUsage: s.memoryMaxUsage, stats: s.memoryStat.isEmpty ? nil : s.memoryStat,
                     failcnt: s.memoryFailcnt, limit: s.memoryLimit)
            : Memory()
        if !s.networks.isEmpty {
            networks = s.networks.mapValues {
                Network(rxBytes: $0.rxBytes, rxPackets: $0.rxPackets, rxErrors: $0.rxErrors, rxDropped: $0.rxDropped,
                        txBytes: $0.txBytes, txPackets: $0.txPackets, txErrors: $0.txErrors, txDropped: $0.txDropped)
            }
        }
    }
}
