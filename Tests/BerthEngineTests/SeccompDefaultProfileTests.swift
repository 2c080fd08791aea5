import BerthOCI
@testable import BerthEngine
import Foundation
import XCTest

/// Berth's default seccomp profile against Docker's published one, rule by rule, and its
/// resolution for a container's capabilities, architecture and kernel.
final class SeccompDefaultProfileTests: XCTestCase {
    /// Docker 20.10's profile as Debian's golang-github-docker-docker-dev installs it
    /// (scripts/setup.sh installs the package).
    static let dockerProfilePath = "/usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json"

    struct Difference {
        /// Berth's rules for the syscall, in `describe` form; empty when Berth has none (EPERM).
        var berth: [String]
        var reason: String
    }

    /// Every place Berth's default departs from Docker 20.10's, and why. Keep it short.
    static let intentionalDifferences: [String: Difference] = {
        let ioUring = Difference(berth: [], reason: """
            io_uring performs file and network operations that seccomp never sees, and has been a \
            steady source of kernel escapes; Docker 25 removed io_uring_* from its default allow-list \
            too (moby/moby#46762, after containerd).
            """)
        return [
            "io_uring_setup": ioUring, "io_uring_enter": ioUring, "io_uring_register": ioUring,
            "socket": Difference(berth: [
                "ALLOW includes.caps=[CAP_NET_ADMIN]",
                // Without it: allowed when a low bit of the family differs from AF_NETLINK (16)...
                "ALLOW args=[0 MASKED_EQ 0x1 0x1] excludes.caps=[CAP_NET_ADMIN]",
                "ALLOW args=[0 MASKED_EQ 0x2 0x2] excludes.caps=[CAP_NET_ADMIN]",
                "ALLOW args=[0 MASKED_EQ 0x4 0x4] excludes.caps=[CAP_NET_ADMIN]",
                "ALLOW args=[0 MASKED_EQ 0x8 0x8] excludes.caps=[CAP_NET_ADMIN]",
                "ALLOW args=[0 MASKED_EQ 0x10 0x0] excludes.caps=[CAP_NET_ADMIN]",
                "ALLOW args=[0 MASKED_EQ 0x20 0x20] excludes.caps=[CAP_NET_ADMIN]",
                // ...or one of the protocol from NETLINK_NETFILTER (12).
                "ALLOW args=[2 MASKED_EQ 0x1 0x1] excludes.caps=[CAP_NET_ADMIN]",
                "ALLOW args=[2 MASKED_EQ 0x2 0x2] excludes.caps=[CAP_NET_ADMIN]",
                "ALLOW args=[2 MASKED_EQ 0x4 0x0] excludes.caps=[CAP_NET_ADMIN]",
                "ALLOW args=[2 MASKED_EQ 0x8 0x0] excludes.caps=[CAP_NET_ADMIN]",
                "ALLOW args=[2 MASKED_EQ 0x10 0x10] excludes.caps=[CAP_NET_ADMIN]",
            ], reason: """
                socket(AF_NETLINK, *, NETLINK_NETFILTER) needs CAP_NET_ADMIN: nfnetlink refuses every \
                message without it, so the socket is useless to a default container and only exposes \
                nf_tables (module autoloading, the CVE-2024-1086 class) to it. Docker allows every socket.
                """),
        ]
    }()

    /// One rule as a line: action, errno, conditions, includes, excludes. Defaults are spelt out
    /// (errno 1 for SCMP_ACT_ERRNO, valueTwo 0) so that equal rules read the same.
    static func describe(_ rule: DockerSeccompProfile.Rule) -> String {
        var parts = [String(rule.action.dropFirst("SCMP_ACT_".count))]
        if rule.action == "SCMP_ACT_ERRNO" { parts[0] += "(\(rule.errnoRet ?? 1))" }
        if let args = rule.args, !args.isEmpty {
            parts.append("args=[" + args.map { a in
                "\(a.index) \(a.op.dropFirst("SCMP_CMP_".count)) 0x\(String(a.value, radix: 16))"
                    + (a.op == "SCMP_CMP_MASKED_EQ" ? " 0x\(String(a.valueTwo ?? 0, radix: 16))" : "")
            }.joined(separator: ", ") + "]")
        }
        for (label, filter) in [("includes", rule.includes), ("excludes", rule.excludes)] {
            guard let filter else { continue }
            if let caps = filter.caps, !caps.isEmpty { parts.append("\(label).caps=\(caps.sorted())") }
            if let arches = filter.arches, !arches.isEmpty { parts.append("\(label).arches=\(arches.sorted())") }
            if let k = filter.minKernel { parts.append("\(label).minKernel=\(k)") }
        }
        return parts.joined(separator: " ").replacingOccurrences(of: "\"", with: "")
    }

    /// Syscall name to its rules, each described, sorted.
    static func rulesBySyscall(_ profile: DockerSeccompProfile) -> [String: [String]] {
        var out: [String: [String]] = [:]
        for rule in profile.syscalls ?? [] {
            for name in rule.names ?? [rule.name].compactMap({ $0 }) {
                out[name, default: []].append(describe(rule))
            }
        }
        return out.mapValues { $0.sorted() }
    }

    func testEverySyscallMatchesDockersDefaultProfileExceptTheListedDifferences() throws {
        guard let json = FileManager.default.contents(atPath: Self.dockerProfilePath) else {
            throw XCTSkip("Docker's default seccomp profile is not installed at \(Self.dockerProfilePath) "
                          + "(apt-get install golang-github-docker-docker-dev; scripts/setup.sh does)")
        }
        let docker = try DockerSeccompProfile.decode(String(decoding: json, as: UTF8.self))
        let berth = BerthDefaultSeccomp.template

        XCTAssertEqual(berth.defaultAction, docker.defaultAction)
        XCTAssertEqual(berth.defaultErrnoRet ?? 1, docker.defaultErrnoRet ?? 1)  // unset means EPERM
        XCTAssertEqual(berth.archMap, docker.archMap)
        XCTAssertEqual(berth.architectures, docker.architectures)
        XCTAssertEqual(berth.flags, docker.flags)
        XCTAssertNoThrow(try berth.validate())

        let dockerRules = Self.rulesBySyscall(docker)
        let berthRules = Self.rulesBySyscall(berth)
        for name in Set(dockerRules.keys).union(berthRules.keys).sorted() {
            let d = dockerRules[name] ?? [], b = berthRules[name] ?? []
            if let difference = Self.intentionalDifferences[name] {
                XCTAssertEqual(b, difference.berth.sorted(), "\(name): Berth's rules are not the ones the listed difference describes")
                XCTAssertNotEqual(d, b, "\(name): listed as a difference but Docker's profile now agrees; drop it from the list")
            } else {
                XCTAssertEqual(b, d, "\(name): Berth's default differs from Docker's and the difference is not listed")
            }
        }
        for name in Self.intentionalDifferences.keys {
            XCTAssertFalse(Self.intentionalDifferences[name]!.reason.isEmpty, name)
        }
    }

    // MARK: resolution for a container

    private static let defaultCaps = Set(SpecBuilder.defaultCapabilities)
    private static let kernel = KernelRelease(major: 6, minor: 1)

    private func rules(_ seccomp: Seccomp, _ name: String) -> [Seccomp.Syscall] {
        (seccomp.syscalls ?? []).filter { $0.names.contains(name) }
    }

    /// Whether any of `rules` (ORed; conditions ANDed) allows a call with `args`, as the filter
    /// compares them: 64 bits wide, MASKED_EQ taking the mask in `value`.
    static func allows(_ rules: [Seccomp.Syscall], _ args: [UInt64]) -> Bool {
        rules.contains { rule in
            rule.action == "SCMP_ACT_ALLOW" && (rule.args ?? []).allSatisfy { c in
                let a = args[Int(c.index)]
                switch c.op {
                case "SCMP_CMP_EQ": return a == c.value
                case "SCMP_CMP_NE": return a != c.value
                case "SCMP_CMP_MASKED_EQ": return a & c.value == (c.valueTwo ?? 0)
                default: XCTFail("operator \(c.op) not evaluated"); return false
                }
            }
        }
    }

    private func allowsUnconditionally(_ seccomp: Seccomp, _ name: String) -> Bool {
        rules(seccomp, name).contains { $0.action == "SCMP_ACT_ALLOW" && ($0.args ?? []).isEmpty }
    }

    func testDefaultContainerGetsAnAllowListWithEPERMAndNoNamespaceFlags() {
        let p = BerthDefaultSeccomp.profile(capabilities: Self.defaultCaps, kernel: Self.kernel)
        XCTAssertEqual(p.defaultAction, "SCMP_ACT_ERRNO")
        XCTAssertEqual(p.defaultErrnoRet, 1)
        XCTAssertEqual(p.architectures, [DockerSeccompProfile.nativeArch] + DockerSeccompProfile.nativeSubArches)
        for name in ["read", "execve", "rseq", "close_range", "faccessat2", "chown", "setuid", "ptrace"] {
            XCTAssertTrue(allowsUnconditionally(p, name), name)
        }
        for name in ["mount", "fsopen", "fsmount", "move_mount", "unshare", "setns", "io_uring_setup", "pidfd_getfd",
                     "keyctl", "add_key", "bpf", "perf_event_open", "userfaultfd", "process_vm_readv", "reboot"] {
            XCTAssertTrue(rules(p, name).isEmpty, name)
        }
        XCTAssertEqual(rules(p, "clone"), [Seccomp.Syscall(names: ["clone"], action: "SCMP_ACT_ALLOW",
            args: [Seccomp.Arg(index: 0, value: 0x7E02_0000, op: "SCMP_CMP_MASKED_EQ")])])
        XCTAssertEqual(rules(p, "clone3"), [Seccomp.Syscall(names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: 38)])
        XCTAssertEqual(rules(p, "personality").compactMap { $0.args?.first?.value }, [0, 8, 0x20000, 0x20008, 0xFFFF_FFFF])
        let socket = rules(p, "socket")
        for (family, proto) in [(2, 0), (10, 6), (16, 0), (16, 9), (16, 15), (2, 12), (17, 0x300)] as [(UInt64, UInt64)] {
            XCTAssertTrue(Self.allows(socket, [family, 1, proto]), "socket(\(family), _, \(proto))")
        }
        // AF_NETLINK/NETLINK_NETFILTER, also with garbage in the upper halves (the kernel reads ints).
        for (family, proto) in [(16, 12), (1 << 32 | 16, 12), (16, 0xFFFF_FFFF_0000_000C)] as [(UInt64, UInt64)] {
            XCTAssertFalse(Self.allows(socket, [family, 1, proto]), "socket(\(family), _, \(proto))")
        }
        #if arch(x86_64)
        XCTAssertTrue(allowsUnconditionally(p, "arch_prctl"))
        XCTAssertTrue(rules(p, "set_tls").isEmpty)
        #endif
    }

    func testCapabilitiesUnlockTheirSyscallsAsInDocker() {
        let admin = BerthDefaultSeccomp.profile(capabilities: Self.defaultCaps.union(["CAP_SYS_ADMIN"]), kernel: Self.kernel)
        for name in ["clone", "clone3", "unshare", "setns", "mount", "fsopen", "move_mount", "bpf", "perf_event_open"] {
            XCTAssertTrue(allowsUnconditionally(admin, name), name)
        }
        XCTAssertFalse(rules(admin, "clone").contains { $0.args != nil }, "the namespace-flag rule is excluded")
        XCTAssertFalse(rules(admin, "clone3").contains { $0.action == "SCMP_ACT_ERRNO" })
        XCTAssertTrue(rules(admin, "pidfd_getfd").isEmpty)

        let ptrace = BerthDefaultSeccomp.profile(capabilities: Self.defaultCaps.union(["CAP_SYS_PTRACE"]), kernel: Self.kernel)
        for name in ["pidfd_getfd", "process_vm_readv", "kcmp"] { XCTAssertTrue(allowsUnconditionally(ptrace, name), name) }

        let netAdmin = BerthDefaultSeccomp.profile(capabilities: Self.defaultCaps.union(["CAP_NET_ADMIN"]), kernel: Self.kernel)
        XCTAssertEqual(rules(netAdmin, "socket"), [Seccomp.Syscall(names: ["socket"], action: "SCMP_ACT_ALLOW")])

        // includes.caps holds only with the capability: SYS_CHROOT is one of Docker's defaults.
        XCTAssertTrue(allowsUnconditionally(BerthDefaultSeccomp.profile(capabilities: Self.defaultCaps), "chroot"))
        XCTAssertTrue(rules(BerthDefaultSeccomp.profile(capabilities: []), "chroot").isEmpty)
    }

    func testMinKernelFollowsTheRunningKernel() {
        // Before 4.8 ptrace could bypass seccomp, so Docker allows it only from there on.
        XCTAssertTrue(rules(BerthDefaultSeccomp.profile(capabilities: Self.defaultCaps,
                                                       kernel: KernelRelease(major: 4, minor: 4)), "ptrace").isEmpty)
        XCTAssertTrue(allowsUnconditionally(BerthDefaultSeccomp.profile(capabilities: Self.defaultCaps,
                                                                        kernel: KernelRelease(major: 4, minor: 8)), "ptrace"))
        XCTAssertTrue(rules(BerthDefaultSeccomp.profile(capabilities: Self.defaultCaps, kernel: nil), "ptrace").isEmpty)
    }

    func testKernelReleaseParsesMajorMinorOnly() {
        XCTAssertEqual(KernelRelease("6.18.44-fc-v1300"), KernelRelease(major: 6, minor: 18))
        XCTAssertEqual(KernelRelease("3.12-1-amd64"), KernelRelease(major: 3, minor: 12))
        XCTAssertEqual(KernelRelease("4.8"), KernelRelease(major: 4, minor: 8))
        XCTAssertNil(KernelRelease("4"))
        XCTAssertNil(KernelRelease("four.eight"))
        XCTAssertLessThan(KernelRelease(major: 4, minor: 9), KernelRelease(major: 4, minor: 10))
        XCTAssertNotNil(KernelRelease.running)
    }

    func testUserProfileWithBadMinKernelIsRejected() {
        let json = #"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["ptrace"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"x"}}]}"#
        XCTAssertThrowsError(try DockerSeccompProfile.decode(json).ociProfile(capabilities: []))
    }
}
