/// `linux.cgroupsPath` interpreted as config-linux.md "Cgroups path" says, plus the systemd form.
///
/// - absolute (`/a/b`): relative to the root of each hierarchy;
/// - relative (`a/b`): relative to the calling process's own cgroup in each hierarchy
///   (from /proc/self/cgroup), so it can differ between v1 hierarchies;
/// - nil or empty: `/berth/<containerID>`;
/// - systemd (`slice:prefix:name`, as containerd and kubelet send with the systemd cgroup
///   driver): mapped to the cgroupfs path systemd itself would use,
///   `<expanded slice>/<prefix>-<name>.scope`, where the slice `a-b.slice` expands to
///   `/a.slice/a-b.slice`, an empty slice means `system.slice`, `-.slice` is the root, and a
///   name ending in `.slice` is used as is. The directories are created directly on cgroupfs;
///   no systemd unit is registered over D-Bus.
///
/// `..` components are rejected in every form, and so is a path naming the hierarchy root or
/// the caller's own cgroup (`/`, `.`), which a container must not own.
public enum CgroupPath: Sendable, Equatable {
    case absolute(String)
    case relative(String)

    public static func resolve(_ cgroupsPath: String?, containerID: String) throws(CgroupError) -> CgroupPath {
        guard let raw = cgroupsPath, !raw.isEmpty else {
            guard !containerID.isEmpty, !containerID.contains("/"), containerID != ".", containerID != ".." else {
                throw CgroupError(.invalidArgument, "container ID \"\(containerID)\" cannot name a cgroup")
            }
            return .absolute("/berth/" + containerID)
        }
        if raw.hasPrefix("/") {
            let normalized = try normalize(raw, original: raw)
            // The root holds the host's own cgroups; destroy() there would remove them.
            guard normalized != "/" else {
                throw CgroupError(.invalidArgument, "cgroupsPath \"\(raw)\" names the root cgroup")
            }
            return .absolute(normalized)
        }
        let colonParts = raw.split(separator: ":", omittingEmptySubsequences: false)
        if colonParts.count == 3 {
            return .absolute(try systemd(slice: String(colonParts[0]), prefix: String(colonParts[1]),
                                         name: String(colonParts[2]), original: raw))
        }
        let normalized = try normalize(raw, original: raw)
        guard normalized != "/" else {
            throw CgroupError(.invalidArgument, "cgroupsPath \"\(raw)\" names the caller's own cgroup")
        }
        return .relative(String(normalized.dropFirst()))
    }

    /// The path relative to the hierarchy root, given the caller's own cgroup in that hierarchy.
    public func inHierarchy(ownCgroup: String?) -> String {
        switch self {
        case .absolute(let path):
            return path
        case .relative(let path):
            let base = ownCgroup.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 } ?? ""
            return base + "/" + path
        }
    }

    /// Collapses repeated and trailing slashes and `.`; rejects `..`. Returns a path with a leading "/".
    static func normalize(_ path: String, original: String) throws(CgroupError) -> String {
        var components: [Substring] = []
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            if component == "." { continue }
            if component == ".." {
                throw CgroupError(.invalidArgument, "cgroupsPath \"\(original)\" must not contain \"..\"")
            }
            components.append(component)
        }
        return "/" + components.joined(separator: "/")
    }

    static func systemd(slice: String, prefix: String, name: String, original: String) throws(CgroupError) -> String {
        for part in [slice, prefix, name] where part.contains("/") || part == ".." || part == "." {
            throw CgroupError(.invalidArgument, "systemd cgroupsPath \"\(original)\" has an invalid part \"\(part)\"")
        }
        guard !name.isEmpty else {
            throw CgroupError(.invalidArgument, "systemd cgroupsPath \"\(original)\" has no unit name")
        }
        let parent = try expandSlice(slice.isEmpty ? "system.slice" : slice, original: original)
        let unit: String
        if name.hasSuffix(".slice") {
            unit = name
        } else {
            unit = prefix.isEmpty ? name + ".scope" : prefix + "-" + name + ".scope"
        }
        return parent == "/" ? "/" + unit : parent + "/" + unit
    }

    /// systemd's slice nesting: `a-b-c.slice` lives at `/a.slice/a-b.slice/a-b-c.slice`.
    static func expandSlice(_ slice: String, original: String) throws(CgroupError) -> String {
        let suffix = ".slice"
        guard slice.hasSuffix(suffix), slice.count > suffix.count else {
            throw CgroupError(.invalidArgument, "systemd cgroupsPath \"\(original)\": \"\(slice)\" is not a slice name")
        }
        let stem = slice.dropLast(suffix.count)
        if stem == "-" { return "/" }
        var path = ""
        var prefix = ""
        for component in stem.split(separator: "-", omittingEmptySubsequences: false) {
            guard !component.isEmpty else {
                throw CgroupError(.invalidArgument, "systemd cgroupsPath \"\(original)\": \"\(slice)\" is not a valid slice name")
            }
            path += "/" + prefix + component + suffix
            prefix += component + "-"
        }
        return path
    }
}
