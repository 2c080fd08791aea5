#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Facts about the host that `/info` and `/version` report, read from uname, /proc, /sys and
/// /etc/os-release. Cheap enough to read per request; the daemon reads the static ones once.
///
/// Host probing, not container running: it stays here until an engine module owns it.
/// `root` prefixes every path so tests can point it at a fake tree.
public struct HostFacts: Sendable, Equatable {
    public var kernelVersion: String
    /// `uname -m`: x86_64, aarch64.
    public var architecture: String
    public var hostname: String
    /// PRETTY_NAME of os-release ("Debian GNU/Linux 12 (bookworm)").
    public var operatingSystem: String
    /// VERSION_ID of os-release ("12").
    public var osVersion: String
    public var cpus: Int
    /// Bytes, from MemTotal in /proc/meminfo.
    public var memoryBytes: Int64
    /// "1" or "2": cgroup2 mounted at /sys/fs/cgroup means a unified host; hybrid counts as 1.
    public var cgroupVersion: String
    public var cgroupDriver: String
    public var resources: EngineInfo.ResourceSupport

    public init(
        kernelVersion: String, architecture: String, hostname: String, operatingSystem: String, osVersion: String,
        cpus: Int, memoryBytes: Int64, cgroupVersion: String, cgroupDriver: String = "cgroupfs",
        resources: EngineInfo.ResourceSupport = .init()
    ) {
        self.kernelVersion = kernelVersion
        self.architecture = architecture
        self.hostname = hostname
        self.operatingSystem = operatingSystem
        self.osVersion = osVersion
        self.cpus = cpus
        self.memoryBytes = memoryBytes
        self.cgroupVersion = cgroupVersion
        self.cgroupDriver = cgroupDriver
        self.resources = resources
    }

    /// Reads the running host.
    public static func probe(root: String = "") -> HostFacts {
        let osRelease = readText(root + "/etc/os-release") ?? readText(root + "/usr/lib/os-release") ?? ""
        let release = parseOSRelease(osRelease)
        let cgroup = cgroupVersion(mountinfo: readText(root + "/proc/self/mountinfo") ?? "")
        return HostFacts(
            kernelVersion: kernelRelease(), architecture: machine(), hostname: hostname(),
            operatingSystem: release["PRETTY_NAME"] ?? release["NAME"] ?? "Linux", osVersion: release["VERSION_ID"] ?? "",
            cpus: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))),
            memoryBytes: memTotal(meminfo: readText(root + "/proc/meminfo") ?? "") ?? 0,
            cgroupVersion: cgroup,
            resources: resourceSupport(cgroupVersion: cgroup, cgroupRoot: root + "/sys/fs/cgroup"))
    }

    public static func kernelRelease() -> String { uname(\.release) }
    public static func machine() -> String { uname(\.machine) }

    public static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func uname<T>(_ field: KeyPath<utsname, T>) -> String {
        var u = utsname()
        guard Glibc.uname(&u) == 0 else { return "" }
        var value = u[keyPath: field]
        return withUnsafeBytes(of: &value) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// Go's GOARCH for a `uname -m` machine name, which `/version` reports.
    public static func goArchitecture(_ machine: String) -> String {
        switch machine {
        case "x86_64": "amd64"
        case "aarch64", "arm64": "arm64"
        case "i386", "i686": "386"
        case "armv7l", "armv6l": "arm"
        case "ppc64le": "ppc64le"
        case "s390x": "s390x"
        case "riscv64": "riscv64"
        default: machine
        }
    }

    /// KEY=value lines, values unquoted as os-release(5) allows.
    public static func parseOSRelease(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let trimmed = line.drop { $0 == " " }
            guard !trimmed.hasPrefix("#"), let eq = trimmed.firstIndex(of: "=") else { continue }
            var value = trimmed[trimmed.index(after: eq)...]
            if value.count >= 2, let q = value.first, q == "\"" || q == "'", value.last == q {
                value = value.dropFirst().dropLast()
            }
            result[String(trimmed[..<eq])] = String(value).replacing("\\\"", with: "\"").replacing("\\\\", with: "\\")
        }
        return result
    }

    /// MemTotal in bytes (the file says kB, meaning KiB).
    public static func memTotal(meminfo: String) -> Int64? {
        for line in meminfo.split(separator: "\n") where line.hasPrefix("MemTotal:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, let kib = Int64(fields[1]) else { return nil }
            return kib * 1024
        }
        return nil
    }

    /// "2" when the mount at /sys/fs/cgroup is cgroup2 (the last mount there wins), else "1".
    public static func cgroupVersion(mountinfo: String) -> String {
        var version = "1"
        for line in mountinfo.split(separator: "\n") {
            let halves = line.split(separator: " - ", maxSplits: 1)
            guard halves.count == 2 else { continue }
            let fields = halves[0].split(separator: " ")
            guard fields.count >= 5, fields[4] == "/sys/fs/cgroup" else { continue }
            let fsType = halves[1].split(separator: " ").first ?? ""
            version = fsType == "cgroup2" ? "2" : "1"
        }
        return version
    }

    /// Which limits the cgroup files allow, as dockerd's sysinfo checks them.
    public static func resourceSupport(cgroupVersion: String, cgroupRoot: String) -> EngineInfo.ResourceSupport {
        var r = EngineInfo.ResourceSupport()
        if cgroupVersion == "2" {
            let controllers = Set((readText(cgroupRoot + "/cgroup.controllers") ?? "").split(whereSeparator: \.isWhitespace).map(String.init))
            r.memoryLimit = controllers.contains("memory")
            r.swapLimit = r.memoryLimit
            r.cpuCfsPeriod = controllers.contains("cpu")
            r.cpuCfsQuota = r.cpuCfsPeriod
            r.cpuShares = r.cpuCfsPeriod
            r.cpuSet = controllers.contains("cpuset")
            r.pidsLimit = controllers.contains("pids")
        } else {
            func has(_ path: String) -> Bool { access(cgroupRoot + "/" + path, F_OK) == 0 }
            r.memoryLimit = has("memory/memory.limit_in_bytes")
            r.swapLimit = has("memory/memory.memsw.limit_in_bytes")
            r.kernelMemoryTCP = has("memory/memory.kmem.tcp.limit_in_bytes")
            r.oomKillDisable = has("memory/memory.oom_control")
            r.cpuCfsPeriod = has("cpu/cpu.cfs_period_us")
            r.cpuCfsQuota = has("cpu/cpu.cfs_quota_us")
            r.cpuShares = has("cpu/cpu.shares")
            r.cpuSet = has("cpuset/cpuset.cpus")
            r.pidsLimit = has("pids/pids.max")
        }
        return r
    }

    /// Open descriptors of this process (dockerd's NFd).
    public static func openFileDescriptors() -> Int {
        guard let dir = opendir("/proc/self/fd") else { return 0 }
        defer { closedir(dir) }
        var count = 0
        while readdir(dir) != nil { count += 1 }
        return max(0, count - 3)  // ".", ".." and the directory's own descriptor
    }

    /// Threads of this process, reported where dockerd reports goroutines.
    public static func threadCount() -> Int {
        for line in (readText("/proc/self/status") ?? "").split(separator: "\n") where line.hasPrefix("Threads:") {
            return Int(line.dropFirst("Threads:".count).trimmingPrefix(while: { $0 == " " || $0 == "\t" })) ?? 0
        }
        return 0
    }

    public static func ipv4Forwarding() -> Bool {
        (readText("/proc/sys/net/ipv4/ip_forward") ?? "").hasPrefix("1")
    }

    /// A small text file in full; nil if it cannot be read.
    public static func readText(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension Substring {
    fileprivate func trimmingPrefix(while predicate: (Character) -> Bool) -> Substring {
        self.drop(while: predicate)
    }
}
