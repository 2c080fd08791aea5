/// The `linux.seccomp` part of the runtime's `features` output (runtime-spec features.md).
public enum SeccompFeatures {
    /// Actions Berth compiles. SCMP_ACT_NOTIFY is absent: seccomp notify is not supported.
    public static var actions: [String] { SeccompVocabulary.actions }

    /// Argument comparison operators.
    public static var operators: [String] { SeccompVocabulary.comparisons.map(\.name) }

    /// `SCMP_ARCH_*` names the linked libseccomp resolves.
    public static var architectures: [String] {
        SeccompVocabulary.architectureNames.filter { SeccompVocabulary.architectureToken($0) != nil }
    }

    /// Every `flags` value accepted in a profile.
    public static var knownFlags: [String] { SeccompVocabulary.filterFlags.map(\.name) }

    /// Flags that change the installed filter. SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is known but
    /// has no effect without seccomp notify, so it is not listed.
    public static var supportedFlags: [String] {
        SeccompVocabulary.filterFlags.filter { $0.bits != 0 }.map(\.name)
    }
}
