import BerthOS
import BerthAPI
import BerthEngine
import Glibc

/// The daemon's answers to `/version` and `/info`: host facts read at startup, per-request
/// counters, and the engine's container and image counts.
struct DaemonSystemInfo: SystemInfoProvider {
    let id: String
    let dataRoot: String
    let debug: Bool
    let host: HostFacts
    let runtimePath: String
    let buildTime: String
    let backingFilesystem: String
    let warnings: [String]
    let engine: Engine

    init(id: String, dataRoot: String, debug: Bool, warnings: [String], engine: Engine) {
        self.engine = engine
        self.id = id
        self.dataRoot = dataRoot
        self.debug = debug
        self.warnings = warnings
        host = HostFacts.probe()
        runtimePath = engine.runtimePath
        buildTime = Self.executableTime()
        backingFilesystem = Self.filesystemName(dataRoot)
    }

    func version() async throws -> EngineVersion {
        EngineVersion(
            buildTime: buildTime, toolchain: Self.toolchain, arch: HostFacts.goArchitecture(host.architecture),
            kernelVersion: host.kernelVersion)
    }

    func info() async throws -> EngineInfo {
        var facts = host
        facts.hostname = HostFacts.hostname()
        var info = EngineInfo(id: id, name: facts.hostname, dataRoot: dataRoot, host: facts)
        info.driverStatus = [
            ("Backing Filesystem", backingFilesystem), ("Supports d_type", "true"), ("Using metacopy", "false"),
            ("Native Overlay Diff", "true"), ("userxattr", "false"),
        ]
        info.debug = debug
        let counts = await engine.counts()
        info.containers = .init(running: counts.running, stopped: counts.stopped)
        info.images = counts.images
        info.runtimes = [.init(name: "berth-runtime", path: runtimePath)]
        info.defaultRuntime = "berth-runtime"
        info.securityOptions = ["name=seccomp,profile=builtin"]
        info.ipv4Forwarding = HostFacts.ipv4Forwarding()
        info.fileDescriptors = HostFacts.openFileDescriptors()
        info.threads = HostFacts.threadCount()
        info.systemTime = Timestamp.now()
        info.httpProxy = Self.environment("HTTP_PROXY") ?? Self.environment("http_proxy") ?? ""
        info.httpsProxy = Self.environment("HTTPS_PROXY") ?? Self.environment("https_proxy") ?? ""
        info.noProxy = Self.environment("NO_PROXY") ?? Self.environment("no_proxy") ?? ""
        info.warnings = warnings
        return info
    }

    static var toolchain: String {
        #if compiler(>=6.4)
        "swift6.4"
        #elseif compiler(>=6.3)
        "swift6.3"
        #elseif compiler(>=6.2)
        "swift6.2"
        #elseif compiler(>=6.1)
        "swift6.1"
        #else
        "swift6.0"
        #endif
    }

    static func executablePath() -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { readlink("/proc/self/exe", $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count) }
        return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : nil
    }

    /// SwiftPM cannot stamp a build time, so the executable's modification time stands in.
    static func executableTime() -> String {
        var st = stat()
        guard stat("/proc/self/exe", &st) == 0 else { return "" }
        return Timestamp.format(seconds: Int(st.st_mtim.tv_sec), nanoseconds: Int(st.st_mtim.tv_nsec))
    }

    /// The file system under the data root (the longest mount point above it in mountinfo),
    /// named as dockerd's `Backing Filesystem`.
    static func filesystemName(_ path: String) -> String {
        var best = (length: -1, type: "unknown")
        for line in (HostFacts.readText("/proc/self/mountinfo") ?? "").split(separator: "\n") {
            let halves = line.split(separator: " - ", maxSplits: 1)
            guard halves.count == 2 else { continue }
            let fields = halves[0].split(separator: " ")
            guard fields.count >= 5 else { continue }
            let mountPoint = String(fields[4])
            let covers = mountPoint == "/" || path == mountPoint || path.hasPrefix(mountPoint + "/")
            guard covers, mountPoint.count >= best.length else { continue }
            best = (mountPoint.count, String(halves[1].split(separator: " ").first ?? "unknown"))
        }
        switch best.type {
        case "ext2", "ext3", "ext4": return "extfs"
        case "overlay": return "overlayfs"
        default: return best.type
        }
    }

    static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        return String(cString: value)
    }
}
