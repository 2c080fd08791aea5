import BerthOS
import Glibc

/// The local driver's mount options (`docker volume create --opt type=tmpfs --opt device=tmpfs
/// --opt o=size=100m,uid=1000`): validated at create, mounted on `_data` while in use.
enum LocalMount {
    static let validKeys: Set<String> = ["type", "device", "o"]

    static func validate(_ options: [String: String]) throws(VolumeError) {
        for key in options.keys.sorted() where !validKeys.contains(key) {
            throw VolumeError(.invalidArgument, "invalid option: \"\(key)\"")
        }
        let type = options["type"] ?? "", device = options["device"] ?? "", o = options["o"] ?? ""
        if !type.isEmpty && device.isEmpty { throw VolumeError(.invalidArgument, "missing required option: \"device\"") }
        if type.isEmpty && (!device.isEmpty || !o.isEmpty) {
            throw VolumeError(.invalidArgument, "missing required option: \"type\"")
        }
    }

    static func needsMount(_ options: [String: String]) -> Bool { !(options["type"] ?? "").isEmpty }

    /// Flags mount(2) takes as bits rather than in its data string (util-linux's names).
    private static let flags: [String: (set: Bool, bits: UInt)] = [
        "ro": (true, UInt(MS_RDONLY)), "rw": (false, UInt(MS_RDONLY)),
        "nosuid": (true, UInt(MS_NOSUID)), "suid": (false, UInt(MS_NOSUID)),
        "nodev": (true, UInt(MS_NODEV)), "dev": (false, UInt(MS_NODEV)),
        "noexec": (true, UInt(MS_NOEXEC)), "exec": (false, UInt(MS_NOEXEC)),
        "sync": (true, UInt(MS_SYNCHRONOUS)), "async": (false, UInt(MS_SYNCHRONOUS)),
        "dirsync": (true, UInt(MS_DIRSYNC)), "noatime": (true, UInt(MS_NOATIME)),
        "nodiratime": (true, UInt(MS_NODIRATIME)), "relatime": (true, UInt(MS_RELATIME)),
        "strictatime": (true, UInt(MS_STRICTATIME)), "mand": (true, UInt(MS_MANDLOCK)),
        "bind": (true, UInt(MS_BIND)), "rbind": (true, UInt(MS_BIND | MS_REC)),
    ]

    /// `o` split into mount flags and the filesystem's own data (`size=100m,uid=1000`).
    static func parse(_ o: String) -> (flags: UInt, data: String) {
        var bits: UInt = 0
        var data: [Substring] = []
        for opt in o.split(separator: ",") {
            if let f = flags[String(opt)] {
                if f.set { bits |= f.bits } else { bits &= ~f.bits }
            } else {
                data.append(opt)
            }
        }
        return (bits, data.joined(separator: ","))
    }

    static func mount(_ options: [String: String], on target: String) throws(SystemError) {
        let type = options["type"] ?? "", device = options["device"] ?? ""
        let (bits, data) = parse(options["o"] ?? "")
        guard Glibc.mount(device, target, type, bits, data.isEmpty ? nil : data) == 0 else {
            throw SystemError("mount \(device) (\(type)) on \(target)")
        }
        // A bind mount ignores MS_RDONLY until remounted.
        if bits & UInt(MS_BIND) != 0 && bits & UInt(MS_RDONLY) != 0 {
            guard Glibc.mount("", target, "", UInt(MS_REMOUNT | MS_BIND | MS_RDONLY), nil) == 0 else {
                let e = SystemError("remount \(target) read-only")
                umount2(target, Int32(MNT_DETACH))
                throw e
            }
        }
    }

    /// Whether `path` is a mount point of this mount namespace (/proc/self/mountinfo, field 5).
    static func isMountPoint(_ path: String) -> Bool {
        guard let text = try? FileSystem.readString("/proc/self/mountinfo") else { return false }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 5)
            if fields.count > 4, unescape(fields[4]) == path { return true }
        }
        return false
    }

    /// mountinfo writes space, tab, newline and backslash as `\ooo`.
    private static func unescape(_ field: Substring) -> String {
        guard field.contains("\\") else { return String(field) }
        var out: [UInt8] = []
        let bytes = Array(field.utf8)
        var i = 0
        while i < bytes.count {
            if bytes[i] == 92, i + 3 < bytes.count,
               let n = UInt8(String(decoding: bytes[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                out.append(n)
                i += 4
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
