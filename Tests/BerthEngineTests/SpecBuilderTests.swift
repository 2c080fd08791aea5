@testable import BerthEngine
import BerthOCI
import XCTest

final class SpecBuilderTests: XCTestCase {
    private func image(entrypoint: [String]? = nil, cmd: [String]? = ["sh"], env: [String]? = nil,
                       user: String? = nil, workingDir: String? = nil) -> ImageConfig {
        ImageConfig(architecture: "amd64", os: "linux",
                    config: ContainerConfig(user: user, env: env, entrypoint: entrypoint, cmd: cmd, workingDir: workingDir))
    }

    private func build(_ config: DockerContainerConfig = DockerContainerConfig(), _ hc: DockerHostConfig = DockerHostConfig(),
                       image: ImageConfig? = nil, lookups: SpecBuilder.Lookups = .init(),
                       hosts: String? = nil) throws(EngineError) -> Spec {
        try SpecBuilder.build(config: config, hostConfig: hc, image: image ?? self.image(), containerID: "abcdef0123456789",
                              rootfs: "/rootfs", hostsFile: hosts, lookups: lookups)
    }

    private func assertError(_ message: String, file: StaticString = #filePath, line: UInt = #line,
                             _ body: () throws(EngineError) -> Void) {
        do {
            try body()
            XCTFail("expected error \(message)", file: file, line: line)
        } catch {
            XCTAssertEqual(error.message, message, file: file, line: line)
        }
    }

    func testCommandResolutionFollowsDockerMerge() throws {
        let cases: [(img: ([String]?, [String]?), entrypoint: [String]?, cmd: [String]?, want: [String])] = [
            ((["/ep"], ["a"]), nil, nil, ["/ep", "a"]),
            ((["/ep"], ["a"]), nil, ["b"], ["/ep", "b"]),
            ((["/ep"], ["a"]), ["/x"], nil, ["/x"]),
            ((["/ep"], ["a"]), ["/x"], ["y"], ["/x", "y"]),
            ((["/ep"], ["a"]), [""], ["ls"], ["ls"]),
            ((["/ep"], ["a"]), [], nil, ["a"]),
            ((nil, ["sh"]), nil, ["echo", "hi"], ["echo", "hi"]),
        ]
        for c in cases {
            let spec = try build(DockerContainerConfig(cmd: c.cmd, entrypoint: c.entrypoint),
                                 image: image(entrypoint: c.img.0, cmd: c.img.1))
            XCTAssertEqual(spec.process?.args, c.want, "\(c)")
        }
        assertError("no command specified") { () throws(EngineError) in
            _ = try build(DockerContainerConfig(entrypoint: [""]), image: image(entrypoint: ["/ep"], cmd: nil))
        }
    }

    func testEnvOverridesImageAndAddsDefaults() throws {
        let spec = try build(DockerContainerConfig(tty: true, env: ["A=2", "B=x"]), image: image(env: ["A=1", "C=3"]))
        XCTAssertEqual(spec.process?.env, ["PATH=" + SpecBuilder.defaultPath, "HOSTNAME=abcdef012345", "TERM=xterm",
                                           "A=2", "C=3", "B=x"])
        let custom = try build(image: image(env: ["PATH=/bin"]))
        XCTAssertEqual(custom.process?.env?.first, "PATH=/bin")
    }

    func testUserNumericAndResolved() throws {
        var spec = try build(DockerContainerConfig(user: "1000:1000"))
        XCTAssertEqual(spec.process?.user, User(uid: 1000, gid: 1000))
        let lookups = SpecBuilder.Lookups(user: { $0 == "app" ? (uid: 5, gid: 6, additionalGids: [7]) : nil },
                                          group: { $0 == "audio" ? 29 : nil })
        var hc = DockerHostConfig(); hc.groupAdd = ["audio", "100"]
        spec = try build(DockerContainerConfig(user: "app"), hc, lookups: lookups)
        XCTAssertEqual(spec.process?.user, User(uid: 5, gid: 6, additionalGids: [7, 29, 100]))
        spec = try build(image: image(user: "app", workingDir: "/srv"), lookups: lookups)
        XCTAssertEqual(spec.process?.user.uid, 5)
        XCTAssertEqual(spec.process?.cwd, "/srv")
        XCTAssertEqual(try build().process?.cwd, "/")
        assertError("unable to find user bob: no matching entries in passwd file") { () throws(EngineError) in
            _ = try build(DockerContainerConfig(user: "bob"))
        }
    }

    func testCapabilitiesAddDropAllAndUnknown() throws {
        var hc = DockerHostConfig(); hc.capAdd = ["net_admin", "CAP_SYS_TIME"]; hc.capDrop = ["chown"]
        var caps = try build(DockerContainerConfig(), hc).process?.capabilities
        XCTAssertEqual(caps?.bounding?.count, 15)
        XCTAssertTrue(caps?.effective?.contains("CAP_NET_ADMIN") ?? false)
        XCTAssertFalse(caps?.permitted?.contains("CAP_CHOWN") ?? true)
        XCTAssertNil(caps?.inheritable); XCTAssertNil(caps?.ambient)

        hc = DockerHostConfig(); hc.capDrop = ["ALL"]; hc.capAdd = ["KILL"]
        caps = try build(DockerContainerConfig(), hc).process?.capabilities
        XCTAssertEqual(caps?.bounding, ["CAP_KILL"])

        hc = DockerHostConfig(); hc.capAdd = ["all"]; hc.capDrop = ["SYS_ADMIN"]
        caps = try build(DockerContainerConfig(), hc).process?.capabilities
        XCTAssertEqual(caps?.bounding?.count, SpecBuilder.allCapabilities.count - 1)

        hc = DockerHostConfig(); hc.capAdd = ["FOO"]
        assertError("invalid CapAdd: unknown capability: \"CAP_FOO\"") { () throws(EngineError) in _ = try build(DockerContainerConfig(), hc) }
    }

    func testBindsParsing() throws {
        var hc = DockerHostConfig()
        hc.binds = ["/tmp:/data:ro", "/src:/app/:rshared", "cache:/cache"]
        let lookups = SpecBuilder.Lookups(volume: { name throws(EngineError) in "/var/lib/berth/volumes/\(name)/_data" })
        let mounts = try build(DockerContainerConfig(), hc, lookups: lookups).mounts ?? []
        XCTAssertEqual(mounts.first { $0.destination == "/data" }, Mount(destination: "/data", type: "bind", source: "/tmp", options: ["rbind", "rprivate", "ro"]))
        XCTAssertEqual(mounts.first { $0.destination == "/app" }?.options, ["rbind", "rshared"])
        XCTAssertEqual(mounts.first { $0.destination == "/cache" }?.source, "/var/lib/berth/volumes/cache/_data")

        hc.binds = ["rel/dir:/x"]
        assertError("invalid volume specification: 'rel/dir:/x': source must be an absolute path or a volume name") { () throws(EngineError) in
            _ = try build(DockerContainerConfig(), hc)
        }
        hc.binds = ["/a:/x", "/b:/x/"]
        assertError("Duplicate mount point: /x") { () throws(EngineError) in _ = try build(DockerContainerConfig(), hc) }
        hc.binds = ["/a:rel"]
        assertError("invalid mount config: invalid mount path: 'rel' mount path must be absolute") { () throws(EngineError) in
            _ = try build(DockerContainerConfig(), hc)
        }
    }

    func testTmpfsAndMountsAndShmReplacement() throws {
        var hc = DockerHostConfig()
        hc.tmpfs = ["/run": "size=1m,exec"]
        hc.mounts = [
            .init(target: "/dev/shm", type: "tmpfs", tmpfsOptions: .init(sizeBytes: 1024, mode: 0o1777)),
            .init(target: "/b", source: "/host", type: "bind", readOnly: true, bindOptions: .init(propagation: "rslave", nonRecursive: true)),
        ]
        let spec = try build(DockerContainerConfig(), hc, hosts: "/state/hosts")
        let mounts = spec.mounts ?? []
        XCTAssertEqual(mounts.first { $0.destination == "/run" }?.options, ["nosuid", "nodev", "size=1m", "exec"])
        XCTAssertEqual(mounts.filter { $0.destination == "/dev/shm" }, [
            Mount(destination: "/dev/shm", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "noexec", "size=1024", "mode=1777"]),
        ])
        XCTAssertEqual(mounts.first { $0.destination == "/b" }?.options, ["bind", "rslave", "ro"])
        XCTAssertEqual(mounts.first { $0.destination == "/etc/hosts" }?.source, "/state/hosts")
        let defaults = try build().mounts ?? []
        XCTAssertEqual(defaults.first { $0.destination == "/dev/shm" }?.options?.last, "size=67108864")
        XCTAssertEqual(defaults.map(\.destination), ["/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm"])
    }

    func testResourceConversions() throws {
        var hc = DockerHostConfig()
        hc.nanoCpus = 1_500_000_000; hc.memory = 64 << 20; hc.pidsLimit = 100; hc.cpuShares = 512; hc.blkioWeight = 300
        var r = try build(DockerContainerConfig(), hc).linux?.resources
        XCTAssertEqual(r?.cpu?.quota, 150_000); XCTAssertEqual(r?.cpu?.period, 100_000); XCTAssertEqual(r?.cpu?.shares, 512)
        XCTAssertEqual(r?.memory?.limit, 64 << 20); XCTAssertEqual(r?.memory?.swap, 128 << 20)
        XCTAssertEqual(r?.pids?.limit, 100); XCTAssertEqual(r?.blockIO?.weight, 300)

        hc = DockerHostConfig(); hc.memory = 64 << 20; hc.memorySwap = -1; hc.pidsLimit = -1
        r = try build(DockerContainerConfig(), hc).linux?.resources
        XCTAssertEqual(r?.memory?.swap, -1); XCTAssertNil(r?.pids)

        hc = DockerHostConfig(); hc.nanoCpus = 1_000_000_000; hc.cpuQuota = 50_000
        assertError("Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set") { () throws(EngineError) in
            _ = try build(DockerContainerConfig(), hc)
        }
        hc = DockerHostConfig(); hc.blkioWeight = 5
        assertError("Range of blkio weight is from 10 to 1000") { () throws(EngineError) in _ = try build(DockerContainerConfig(), hc) }
    }

    func testDefaultDeviceRulesAndUserDevices() throws {
        var hc = DockerHostConfig()
        hc.devices = [.init(pathOnHost: "/dev/fuse", pathInContainer: "/dev/fuse", cgroupPermissions: "rw")]
        hc.deviceCgroupRules = ["c 42:* rmw"]
        let lookups = SpecBuilder.Lookups(device: { $0 == "/dev/fuse" ? .init(type: "c", major: 10, minor: 229) : nil })
        let linux = try build(DockerContainerConfig(), hc, lookups: lookups).linux
        XCTAssertEqual(linux?.devices, [Device(type: "c", path: "/dev/fuse", major: 10, minor: 229, uid: 0, gid: 0)])
        let rules = linux?.resources?.devices ?? []
        XCTAssertEqual(rules.first, Resources.DeviceCgroup(allow: false, access: "rwm"))
        XCTAssertTrue(rules.contains(.init(allow: true, type: "c", major: 136, minor: nil, access: "rwm")))
        XCTAssertTrue(rules.contains(.init(allow: true, type: "c", major: 10, minor: 229, access: "rw")))
        XCTAssertEqual(rules.last, .init(allow: true, type: "c", major: 42, minor: nil, access: "rmw"))
        hc.deviceCgroupRules = ["x 1:2 r"]
        assertError("invalid device cgroup format 'x 1:2 r'") { () throws(EngineError) in _ = try build(DockerContainerConfig(), hc, lookups: lookups) }
    }

    func testPrivilegedGetsAllCapsNoSeccompNoMaskedPaths() throws {
        var hc = DockerHostConfig(); hc.privileged = true
        let spec = try build(DockerContainerConfig(), hc)
        XCTAssertEqual(spec.process?.capabilities?.bounding, SpecBuilder.allCapabilities)
        XCTAssertNil(spec.linux?.seccomp); XCTAssertNil(spec.linux?.maskedPaths); XCTAssertNil(spec.linux?.readonlyPaths)
        XCTAssertEqual(spec.linux?.resources?.devices, [.init(allow: true, access: "rwm")])
        let plain = try build().linux
        XCTAssertEqual(plain?.maskedPaths, SpecBuilder.defaultMaskedPaths)
        XCTAssertEqual(plain?.readonlyPaths, SpecBuilder.defaultReadonlyPaths)
        XCTAssertEqual(plain?.cgroupsPath, "/berth/abcdef0123456789")
    }

    func testNamespaceModes() throws {
        XCTAssertEqual(try build().linux?.namespaces?.map(\.type), ["pid", "ipc", "uts", "mount", "network", "cgroup"])
        var hc = DockerHostConfig(); hc.pidMode = "host"; hc.networkMode = "host"; hc.ipcMode = "host"; hc.cgroupnsMode = "host"
        XCTAssertEqual(try build(DockerContainerConfig(), hc).linux?.namespaces?.map(\.type), ["uts", "mount"])
        hc = DockerHostConfig(); hc.networkMode = "container:web"
        let lookups = SpecBuilder.Lookups(namespacePath: { ref, type throws(EngineError) in "/proc/42/ns/\(type)-\(ref)" })
        let ns = try build(DockerContainerConfig(), hc, lookups: lookups).linux?.namespaces
        XCTAssertEqual(ns?.first { $0.type == "network" }?.path, "/proc/42/ns/network-web")
        hc = DockerHostConfig(); hc.networkMode = "none"
        XCTAssertTrue(try build(DockerContainerConfig(), hc).linux?.namespaces?.contains(Namespace(type: "network")) ?? false)
    }

    func testSysctlValidation() throws {
        var hc = DockerHostConfig(); hc.sysctls = ["net.ipv4.ip_forward": "1", "kernel.shmmax": "1000"]
        XCTAssertEqual(try build(DockerContainerConfig(), hc).linux?.sysctl?["net.ipv4.ip_forward"], "1")
        hc.sysctls = ["kernel.pid_max": "10"]
        assertError("sysctl 'kernel.pid_max' is not allowed") { () throws(EngineError) in _ = try build(DockerContainerConfig(), hc) }
        hc.sysctls = ["net.core.somaxconn": "10"]; hc.networkMode = "host"
        assertError("sysctl 'net.core.somaxconn' is not allowed in host network namespace") { () throws(EngineError) in
            _ = try build(DockerContainerConfig(), hc)
        }
    }

    func testUlimits() throws {
        var hc = DockerHostConfig(); hc.ulimits = [.init(name: "nproc", soft: 10, hard: 20), .init(name: "core", soft: -1, hard: -1)]
        XCTAssertEqual(try build(DockerContainerConfig(), hc).process?.rlimits, [
            Rlimit(type: "RLIMIT_NPROC", hard: 20, soft: 10), Rlimit(type: "RLIMIT_CORE", hard: .max, soft: .max),
        ])
        hc.ulimits = [.init(name: "bogus", soft: 1, hard: 1)]
        assertError("invalid ulimit type: bogus") { () throws(EngineError) in _ = try build(DockerContainerConfig(), hc) }
    }

    func testSecurityOptions() throws {
        var hc = DockerHostConfig(); hc.securityOpt = ["no-new-privileges", "seccomp=unconfined", "apparmor=foo", "label=disable"]
        let result = try SpecBuilder.buildWithWarnings(config: DockerContainerConfig(), hostConfig: hc, image: image(),
                                                       containerID: "c1", rootfs: "/r")
        XCTAssertEqual(result.spec.process?.noNewPrivileges, true)
        XCTAssertNil(result.spec.linux?.seccomp)
        XCTAssertEqual(result.warnings.count, 2)
        hc.securityOpt = ["no-new-privileges:false"]
        XCTAssertEqual(try build(DockerContainerConfig(), hc).process?.noNewPrivileges, false)
        hc.securityOpt = ["bogus"]
        assertError("invalid --security-opt: \"bogus\"") { () throws(EngineError) in _ = try build(DockerContainerConfig(), hc) }
    }

    private func allowed(_ seccomp: Seccomp?) -> Set<String> {
        Set((seccomp?.syscalls ?? []).filter { $0.action == "SCMP_ACT_ALLOW" && $0.args == nil }.flatMap(\.names))
    }

    func testDefaultSeccompIsAnAllowListResolvedForTheCapabilities() throws {
        let seccomp = try build().linux?.seccomp
        XCTAssertEqual(seccomp?.defaultAction, "SCMP_ACT_ERRNO")
        XCTAssertEqual(seccomp?.architectures?.first, DockerSeccompProfile.nativeArch)
        let a = allowed(seccomp)
        XCTAssertTrue(a.contains("read") && a.contains("chown"))
        for name in ["mount", "umount2", "unshare", "setns", "process_vm_readv", "keyctl", "reboot", "init_module", "bpf", "clock_settime"] {
            XCTAssertFalse(a.contains(name), name)
        }

        var hc = DockerHostConfig(); hc.capAdd = ["SYS_ADMIN", "SYS_PTRACE"]
        let a2 = allowed(try build(DockerContainerConfig(), hc).linux?.seccomp)
        for name in ["mount", "umount2", "setns", "unshare", "ptrace", "process_vm_readv"] { XCTAssertTrue(a2.contains(name), name) }
        XCTAssertFalse(a2.contains("keyctl"))
        XCTAssertFalse(a2.contains("reboot"))
    }

    func testInlineDockerSeccompProfileIsDecoded() throws {
        let profile = """
        {"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,
         "archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"]},
                    {"architecture":"SCMP_ARCH_AARCH64","subArchitectures":["SCMP_ARCH_ARM"]}],
         "syscalls":[
          {"names":["read","write","exit_group"],"action":"SCMP_ACT_ALLOW"},
          {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]},
          {"names":["mount"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}},
          {"names":["arch_prctl"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["amd64","x32"]}},
          {"names":["ptrace"],"action":"SCMP_ACT_ALLOW","excludes":{"caps":["CAP_SYS_PTRACE"]}},
          {"name":"chmod","action":"SCMP_ACT_ERRNO","errnoRet":13}
         ]}
        """
        var hc = DockerHostConfig(); hc.securityOpt = ["seccomp=" + profile]
        let s = try XCTUnwrap(try build(DockerContainerConfig(), hc).linux?.seccomp)
        XCTAssertEqual(s.defaultAction, "SCMP_ACT_ERRNO"); XCTAssertEqual(s.defaultErrnoRet, 1)
        #if arch(x86_64)
        XCTAssertEqual(s.architectures, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        XCTAssertTrue(s.syscalls?.contains { $0.names == ["arch_prctl"] } ?? false)
        #endif
        let names = (s.syscalls ?? []).flatMap(\.names)
        XCTAssertFalse(names.contains("mount"))
        XCTAssertTrue(names.contains("ptrace"))
        XCTAssertEqual(s.syscalls?.first { $0.names == ["personality"] }?.args, [Seccomp.Arg(index: 0, value: 8, op: "SCMP_CMP_EQ")])
        XCTAssertEqual(s.syscalls?.last, Seccomp.Syscall(names: ["chmod"], action: "SCMP_ACT_ERRNO", errnoRet: 13))

        hc.capAdd = ["SYS_ADMIN", "SYS_PTRACE"]
        let names2 = (try build(DockerContainerConfig(), hc).linux?.seccomp?.syscalls ?? []).flatMap(\.names)
        XCTAssertTrue(names2.contains("mount"))
        XCTAssertFalse(names2.contains("ptrace"))
    }

    func testHostnameAndUTSConflict() throws {
        let spec = try build(DockerContainerConfig(hostname: "web", domainname: "example.org"))
        XCTAssertEqual(spec.hostname, "web"); XCTAssertEqual(spec.domainname, "example.org")
        var hc = DockerHostConfig(); hc.utsMode = "host"
        assertError("Conflicting options: hostname and the UTS mode") { () throws(EngineError) in
            _ = try build(DockerContainerConfig(hostname: "web"), hc)
        }
        hc.oomScoreAdj = 2000; hc.utsMode = nil
        assertError("Invalid value 2000, range for oom score adj is [-1000, 1000]") { () throws(EngineError) in
            _ = try build(DockerContainerConfig(), hc)
        }
    }
}
