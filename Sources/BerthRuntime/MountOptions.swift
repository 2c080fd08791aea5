import Glibc

/// mount(8) options of an OCI mount, split into what mount(2) takes as flags, what it
/// takes as propagation, and the filesystem-specific rest.
struct MountOptions: Equatable {
    var flags: UInt = 0
    var propagation: UInt = 0
    var data: [String] = []
    var isBind = false

    private static let set: [String: UInt] = [
        "ro": UInt(MS_RDONLY), "nosuid": UInt(MS_NOSUID), "nodev": UInt(MS_NODEV), "noexec": UInt(MS_NOEXEC),
        "sync": UInt(MS_SYNCHRONOUS), "dirsync": UInt(MS_DIRSYNC), "remount": UInt(MS_REMOUNT),
        "mand": UInt(MS_MANDLOCK), "noatime": UInt(MS_NOATIME), "nodiratime": UInt(MS_NODIRATIME),
        "relatime": UInt(MS_RELATIME), "strictatime": UInt(MS_STRICTATIME), "silent": UInt(MS_SILENT),
        "lazytime": UInt(1 << 25),
    ]
    private static let clear: [String: UInt] = [
        "rw": UInt(MS_RDONLY), "suid": UInt(MS_NOSUID), "dev": UInt(MS_NODEV), "exec": UInt(MS_NOEXEC),
        "async": UInt(MS_SYNCHRONOUS), "nomand": UInt(MS_MANDLOCK), "atime": UInt(MS_NOATIME),
        "diratime": UInt(MS_NODIRATIME), "norelatime": UInt(MS_RELATIME), "nostrictatime": UInt(MS_STRICTATIME),
        "loud": UInt(MS_SILENT), "nolazytime": UInt(1 << 25), "defaults": 0,
    ]
    private static let propagations: [String: UInt] = [
        "private": UInt(MS_PRIVATE), "rprivate": UInt(MS_PRIVATE | MS_REC),
        "shared": UInt(MS_SHARED), "rshared": UInt(MS_SHARED | MS_REC),
        "slave": UInt(MS_SLAVE), "rslave": UInt(MS_SLAVE | MS_REC),
        "unbindable": UInt(MS_UNBINDABLE), "runbindable": UInt(MS_UNBINDABLE | MS_REC),
    ]
    /// Options that runc accepts and that change nothing for Berth's mounts.
    private static let ignored: Set<String> = ["tmpcopyup", "nosymfollow"]

    init(_ options: [String], field: String) throws(RuntimeError) {
        for option in options {
            if option == "bind" {
                isBind = true
                flags |= UInt(MS_BIND)
            } else if option == "rbind" {
                isBind = true
                flags |= UInt(MS_BIND | MS_REC)
            } else if let f = Self.set[option] {
                flags |= f
            } else if let f = Self.clear[option] {
                flags &= ~f
            } else if let p = Self.propagations[option] {
                propagation = p
            } else if Self.ignored.contains(option) {
                continue
            } else if ["idmap", "ridmap", "rro", "rrw", "rnosuid", "rnodev", "rnoexec"].contains(option) {
                throw .invalid(field, "mount option \"\(option)\" is not supported")
            } else {
                data.append(option)
            }
        }
    }

    /// The canonical names `features` reports.
    static var known: [String] {
        (["bind", "rbind"] + set.keys + clear.keys + propagations.keys + ignored).sorted()
    }
}
