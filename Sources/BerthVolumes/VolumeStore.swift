import BerthOS
import FoundationEssentials
import Glibc

/// Named volumes with the local driver, as directories under one root:
///
///     <root>/<name>/volume.json   metadata, written atomically
///     <root>/<name>/_data         the content containers see
///
/// A volume appears whole or not at all: it is built in a hidden directory and renamed into
/// place, and removal renames it away before deleting. Knows nothing of containers or images:
/// which container uses a volume is the engine's business. Imports BerthOS only.
public struct VolumeStore: Sendable {
    public let root: String

    /// The only driver: volumes are directories on this host.
    public static let localDriver = "local"
    /// The label Docker (API 1.42+) puts on anonymous volumes; `volume prune` without `all`
    /// removes only volumes that carry it.
    public static let anonymousLabel = "com.docker.volume.anonymous"

    public init(root: String) throws(VolumeError) {
        self.root = root
        do { try FileSystem.makeDirectories(root, mode: 0o701) } catch {
            throw VolumeError(.system, error.message)
        }
    }

    public func directory(_ name: String) -> String { root + "/" + name }

    /// Where the volume's content lives on the host: Docker's `Mountpoint`.
    public func mountpoint(_ name: String) -> String { directory(name) + "/_data" }

    // MARK: Creating

    /// Creates a volume, or returns the existing one of that name (Docker's create is
    /// idempotent); `created` tells which.
    public func create(name: String, driver: String = "", labels: [String: String] = [:],
                       options: [String: String] = [:]) throws(VolumeError) -> (volume: Volume, created: Bool) {
        guard Self.isValidName(name) else {
            throw VolumeError(.invalidArgument, "create \(name): \"\(name)\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path")
        }
        let driver = driver.isEmpty ? Self.localDriver : driver
        guard driver == Self.localDriver else {
            throw VolumeError(.notFound, "create \(name): error looking up volume plugin \(driver): plugin \"\(driver)\" not found")
        }
        if let existing = try? get(name) { return (existing, false) }
        do throws(VolumeError) { try LocalMount.validate(options) } catch {
            throw VolumeError(error.code, "create \(name): \(error.message)")
        }
        let now = Timestamp.now()
        // RFC 3339 to the second, as Docker shows CreatedAt.
        let volume = Volume(name: name, driver: driver, labels: labels, options: options,
                            createdAt: String(now.prefix(19)) + "Z")
        let bytes: Data
        do { bytes = try JSONEncoder().encode(volume) } catch {
            throw VolumeError(.system, "create \(name): encoding volume.json: \(error)")
        }
        let temp = root + "/.create-" + name + "-" + Self.randomSuffix()
        do throws(SystemError) {
            try FileSystem.makeDirectories(temp + "/_data", mode: 0o755)
            chmod(temp, 0o701)
            try FileSystem.writeAtomically(temp + "/volume.json", bytes, mode: 0o600, durable: true)
            guard rename(temp, directory(name)) == 0 else {
                let e = errno
                try? FileSystem.removeTree(temp)
                if e == EEXIST || e == ENOTEMPTY, let existing = try? get(name) { return (existing, false) }
                throw SystemError("rename \(temp) to \(directory(name))", errno: e)
            }
        } catch {
            try? FileSystem.removeTree(temp)
            throw VolumeError(.system, "create \(name): \(error.message)")
        }
        try? FileSystem.syncDirectory(root)
        return (volume, true)
    }

    // MARK: Reading

    public func get(_ name: String) throws(VolumeError) -> Volume {
        guard Self.isValidName(name), let bytes = try? FileSystem.readBytes(directory(name) + "/volume.json") else {
            throw VolumeError(.notFound, "get \(name): no such volume")
        }
        do { return try JSONDecoder().decode(Volume.self, from: Data(bytes)) } catch {
            throw VolumeError(.system, "get \(name): reading volume.json: \(error)")
        }
    }

    /// Every volume, by name; unreadable entries (a crash mid-remove) are skipped.
    public func list() -> [Volume] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return names.filter(Self.isValidName).sorted().compactMap { try? get($0) }
    }

    /// Whether `_data` has no entries: a volume Docker fills from the image.
    public func isEmpty(_ name: String) -> Bool {
        guard let dir = opendir(mountpoint(name)) else { return false }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let isDot = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                raw[0] == 46 && (raw[1] == 0 || (raw[1] == 46 && raw[2] == 0))
            }
            if !isDot { return false }
        }
        return true
    }

    /// Bytes in the volume's files (each inode once), as `system df` reports.
    public func size(_ name: String) -> Int64 { DirectorySize.of(mountpoint(name)) }

    // MARK: Removing

    /// Removes the volume and its content; 404 when there is no such volume. The caller checks
    /// that no container uses it.
    public func remove(_ name: String) throws(VolumeError) {
        _ = try get(name)
        try deactivate(name)
        let doomed = root + "/.remove-" + name + "-" + Self.randomSuffix()
        guard rename(directory(name), doomed) == 0 else {
            throw VolumeError(.system, SystemError("remove \(name): rename \(directory(name))").message)
        }
        try? FileSystem.syncDirectory(root)
        do { try FileSystem.removeTree(doomed) } catch {
            throw VolumeError(.system, "remove \(name): \(error.message)")
        }
    }

    /// Clears what a crash left between a rename and the end of a create or remove.
    public func removeLeftovers() {
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        where entry.hasPrefix(".create-") || entry.hasPrefix(".remove-") {
            umount2(root + "/" + entry + "/_data", Int32(MNT_DETACH))
            try? FileSystem.removeTree(root + "/" + entry)
        }
    }

    // MARK: Using

    /// Mounts what the local driver's options (`type`, `device`, `o`) describe on `_data`, once:
    /// the engine calls this when a container takes the volume. Plain volumes need nothing.
    public func activate(_ name: String) throws(VolumeError) {
        let volume = try get(name)
        guard LocalMount.needsMount(volume.options), !LocalMount.isMountPoint(mountpoint(name)) else { return }
        do { try LocalMount.mount(volume.options, on: mountpoint(name)) } catch {
            throw VolumeError(.system, "error while mounting volume '\(mountpoint(name))': \(error.message)")
        }
    }

    /// Undoes `activate` when the last container using the volume has gone.
    public func deactivate(_ name: String) throws(VolumeError) {
        let path = mountpoint(name)
        guard LocalMount.isMountPoint(path) else { return }
        if umount2(path, 0) != 0 && umount2(path, Int32(MNT_DETACH)) != 0 {
            throw VolumeError(.system, SystemError("unmount volume \(name) at \(path)").message)
        }
    }

    /// Checks that `subpath` is a directory inside the volume reached without a symlink, so a
    /// mount of it cannot leave the volume.
    public func checkSubpath(_ name: String, _ subpath: String) throws(VolumeError) {
        var fd = open(mountpoint(name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        defer { if fd >= 0 { close(fd) } }
        for part in subpath.split(separator: "/") where part != "." {
            let next = part == ".." ? -1 : openat(fd, String(part), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            close(fd)
            fd = next
            guard fd >= 0 else {
                throw VolumeError(.invalidArgument, "cannot access path \(subpath) in volume \(name): not a directory inside the volume")
            }
        }
    }

    /// Fills an empty volume from `path` inside the directory tree at `root` (an image's root
    /// filesystem): content, owners, modes, times, symlinks, device nodes and xattrs, and the
    /// owner and mode of the directory itself. Symlinks in `path` resolve inside `root`; nothing
    /// below it is followed, and nothing is written outside the volume. A `path` that is
    /// missing or not a directory copies nothing.
    public func fill(_ name: String, from sourceRoot: String, path: String) throws(VolumeError) {
        do {
            try TreeCopy.copy(root: sourceRoot, path: path, into: mountpoint(name))
        } catch {
            throw VolumeError(.system, "copying \(path) from the image into volume \(name): \(error.message)")
        }
    }

    // MARK: Names

    /// Docker's local volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
    public static func isValidName(_ name: String) -> Bool {
        let u = Array(name.utf8)
        func alnum(_ c: UInt8) -> Bool { (48...57).contains(c) || (65...90).contains(c) || (97...122).contains(c) }
        guard u.count >= 2, alnum(u[0]) else { return false }
        return u.dropFirst().allSatisfy { alnum($0) || $0 == 95 || $0 == 46 || $0 == 45 }
    }

    /// A random 64-hex name, as Docker gives anonymous and unnamed volumes.
    public static func randomName() -> String {
        var g = SystemRandomNumberGenerator()
        let hex = Array("0123456789abcdef")
        return String((0..<64).map { _ in hex[Int(g.next() % 16)] })
    }

    private static func randomSuffix() -> String { String(UInt64.random(in: 0...UInt64.max), radix: 36) }
}

/// What `<root>/<name>/volume.json` holds.
public struct Volume: Codable, Sendable, Equatable {
    public var name: String
    public var driver: String
    public var labels: [String: String]
    /// The driver options given at creation (`docker volume create --opt`).
    public var options: [String: String]
    /// RFC 3339, to the second.
    public var createdAt: String

    /// Created for one container, with no name from the user (Docker marks it with a label).
    public var anonymous: Bool { labels[VolumeStore.anonymousLabel] != nil }
}
