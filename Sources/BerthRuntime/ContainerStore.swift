import BerthOCI
import BerthOS
import FoundationEssentials
import Glibc

/// What the runtime remembers about a container between commands, in `<root>/<id>/state.json`.
/// Only what state, start, kill and delete need: those run several times per container, so
/// the full config (for exec and update) is kept apart in `<root>/<id>/config.json`.
struct ContainerRecord: Codable {
    var id: String
    var bundle: String
    var rootfs: String
    var pid: Int32
    /// Identifies the process across pid reuse (ProcFS start time).
    var startTime: UInt64
    var created: String
    var owner: String
    var ociVersion: String
    var annotations: [String: String]?
    var cgroupsPath: String?
    var terminal: Bool
    var poststart: [Hook]?
    var poststop: [Hook]?
}

/// The state directory: one subdirectory per container. Every write is atomic.
struct ContainerStore {
    let root: String

    func directory(_ id: String) -> String { "\(root)/\(id)" }
    func fifoPath(_ id: String) -> String { "\(root)/\(id)/exec.fifo" }

    static func validate(id: String) throws(RuntimeError) {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.+-")
        guard let first = id.first, first.isLetter || first.isNumber, id.count <= 1024,
              id.allSatisfy({ allowed.contains($0) }) else {
            throw RuntimeError(.invalidArgument, "invalid container id \"\(id)\": use letters, digits, and _ . + -")
        }
    }

    /// Claims the id: mkdir is atomic, so two concurrent creates cannot both succeed.
    func claim(_ id: String) throws(RuntimeError) {
        do { try FileSystem.makeDirectories(root, mode: 0o711) } catch {
            throw RuntimeError(.system, "cannot create state directory \(root): \(error)")
        }
        if mkdir(directory(id), 0o711) != 0 {
            if errno == EEXIST { throw RuntimeError(.conflict, "container \"\(id)\" already exists") }
            throw RuntimeError(.system, "cannot create \(directory(id)): \(String(cString: strerror(errno)))")
        }
    }

    func save(_ record: ContainerRecord) throws(RuntimeError) {
        try write(record, to: directory(record.id) + "/state.json", id: record.id)
    }

    func saveConfig(_ json: Data, id: String) throws(RuntimeError) {
        do { try FileSystem.writeAtomically(directory(id) + "/config.json", json, mode: 0o600) } catch {
            throw RuntimeError(.system, "saving config of \(id): \(error)")
        }
    }

    private func write(_ value: some Encodable, to path: String, id: String) throws(RuntimeError) {
        do {
            let data = try JSONEncoder().encode(value)
            try FileSystem.writeAtomically(path, data, mode: 0o600)
        } catch {
            throw RuntimeError(.system, "saving state of \(id): \(error)")
        }
    }

    /// The config the container was created with (as updated since).
    func config(_ id: String) throws(RuntimeError) -> Spec {
        guard let data = try? FileSystem.readData(directory(id) + "/config.json") else {
            throw RuntimeError(.notFound, "container \"\(id)\" does not exist")
        }
        do { return try JSONDecoder().decode(Spec.self, from: data) } catch {
            throw RuntimeError(.system, "config of container \"\(id)\" is unreadable: \(error)")
        }
    }

    func load(_ id: String) throws(RuntimeError) -> ContainerRecord {
        try Self.validate(id: id)
        let path = directory(id) + "/state.json"
        guard let data = try? FileSystem.readData(path) else {
            throw RuntimeError(.notFound, "container \"\(id)\" does not exist")
        }
        do { return try JSONDecoder().decode(ContainerRecord.self, from: data) } catch {
            throw RuntimeError(.system, "state of container \"\(id)\" is unreadable: \(error)")
        }
    }

    func remove(_ id: String) {
        try? FileSystem.removeTree(directory(id))
    }

    func ids() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .filter { FileSystem.exists(directory($0) + "/state.json") }
            .sorted()
    }
}
