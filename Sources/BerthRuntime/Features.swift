import BerthOCI
import BerthOS
import BerthSeccomp

/// What `features` prints (runtime-spec features.md): what this runtime implements.
public struct Features: Codable, Sendable {
    public var ociVersionMin = "1.0.0"
    public var ociVersionMax = Spec.version
    public var hooks = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
    public var mountOptions: [String]
    public var linux: LinuxFeatures
    public var annotations: [String: String]

    public struct LinuxFeatures: Codable, Sendable {
        public var namespaces: [String]
        public var capabilities: [String]
        public var cgroup: CgroupFeatures
        public var seccomp: SeccompFeatureSet
        public var apparmor = Enabled(enabled: false)
        public var selinux = Enabled(enabled: false)
        public var intelRdt = Enabled(enabled: false)
        public var mountExtensions = MountExtensions()
    }
    public struct Enabled: Codable, Sendable { public var enabled: Bool }
    public struct CgroupFeatures: Codable, Sendable {
        public var v1 = true
        public var v2 = true
        public var systemd = false
        public var systemdUser = false
        public var rdma = false
    }
    public struct SeccompFeatureSet: Codable, Sendable {
        public var enabled = true
        public var actions: [String]
        public var operators: [String]
        public var archs: [String]
        public var knownFlags: [String]
        public var supportedFlags: [String]
    }
    public struct MountExtensions: Codable, Sendable {
        public var idmap = Enabled(enabled: false)
    }

    public static func current() -> Features {
        Features(
            mountOptions: MountOptions.known,
            linux: LinuxFeatures(
                namespaces: NamespaceKind.allCases.map(\.rawValue),
                capabilities: Array(Capability.names.prefix(Capability.lastCap + 1)),
                cgroup: CgroupFeatures(),
                seccomp: SeccompFeatureSet(actions: SeccompFeatures.actions, operators: SeccompFeatures.operators,
                                           archs: SeccompFeatures.architectures, knownFlags: SeccompFeatures.knownFlags,
                                           supportedFlags: SeccompFeatures.knownFlags)),
            annotations: ["org.berth.runtime": "berth-runtime"])
    }
}
