@testable import BerthEngine
import BerthOCI
import FoundationEssentials
import XCTest

final class DockerContainerConfigTests: XCTestCase {
    /// What docker CLI 28 sends for `docker run -d --rm --name x -e A=1 -v /tmp:/data:ro --memory 64m
    /// --cpus 1.5 --cap-add NET_ADMIN --cap-drop CHOWN --ulimit nofile=100:200 --tmpfs /run:size=1m
    /// --read-only -u 1000:1000 -w /work --init busybox sleep 9`.
    static let cliRunJSON = """
    {"Hostname":"","Domainname":"","User":"1000:1000","AttachStdin":false,"AttachStdout":false,
     "AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["A=1"],
     "Cmd":["sleep","9"],"Image":"busybox","Volumes":{},"WorkingDir":"/work","Entrypoint":null,
     "OnBuild":null,"Labels":{},
     "HostConfig":{"Binds":["/tmp:/data:ro"],"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},
      "NetworkMode":"bridge","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},
      "AutoRemove":true,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[0,0],"Annotations":null,
      "CapAdd":["NET_ADMIN"],"CapDrop":["CHOWN"],"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],
      "ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"",
      "Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":true,"SecurityOpt":null,
      "Tmpfs":{"/run":"size=1m"},"UTSMode":"","UsernsMode":"","ShmSize":0,"Isolation":"","CpuShares":0,
      "Memory":67108864,"NanoCpus":1500000000,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],
      "BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],
      "CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"",
      "Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,
      "MemorySwappiness":null,"OomKillDisable":null,"PidsLimit":null,
      "Ulimits":[{"Name":"nofile","Hard":200,"Soft":100}],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,
      "IOMaximumBandwidth":0,"Init":true,"MaskedPaths":null,"ReadonlyPaths":null},
     "NetworkingConfig":{"EndpointsConfig":{"bridge":{"IPAMConfig":null,"Links":null,"Aliases":null,
      "MacAddress":"","DriverOpts":null,"GwPriority":0,"NetworkID":"","EndpointID":"","Gateway":"",
      "IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,
      "DNSNames":null}}}}
    """

    func testDecodesTheDockerCLIRunRequest() throws {
        let req = try JSONDecoder().decode(DockerContainerCreateRequest.self, from: Data(Self.cliRunJSON.utf8))
        XCTAssertEqual(req.config.image, "busybox")
        XCTAssertEqual(req.config.cmd, ["sleep", "9"])
        XCTAssertNil(req.config.entrypoint)
        XCTAssertEqual(req.config.user, "1000:1000")
        XCTAssertEqual(req.config.env, ["A=1"])
        let hc = try XCTUnwrap(req.hostConfig)
        XCTAssertEqual(hc.binds, ["/tmp:/data:ro"])
        XCTAssertEqual(hc.memory, 64 * 1024 * 1024)
        XCTAssertEqual(hc.nanoCpus, 1_500_000_000)
        XCTAssertEqual(hc.capAdd, ["NET_ADMIN"])
        XCTAssertEqual(hc.ulimits, [DockerHostConfig.Ulimit(name: "nofile", soft: 100, hard: 200)])
        XCTAssertEqual(hc.tmpfs, ["/run": "size=1m"])
        XCTAssertEqual(hc.readonlyRootfs, true)
        XCTAssertEqual(hc.`init`, true)
        XCTAssertEqual(hc.autoRemove, true)
        XCTAssertNil(hc.pidsLimit)
        XCTAssertEqual(hc.restartPolicy?.name, "no")
        XCTAssertNotNil(req.networkingConfig?.endpointsConfig?["bridge"])
    }

    func testCLIRunRequestBuildsTheExpectedSpec() throws {
        let req = try JSONDecoder().decode(DockerContainerCreateRequest.self, from: Data(Self.cliRunJSON.utf8))
        let image = ImageConfig(architecture: "amd64", os: "linux", config: ContainerConfig(cmd: ["sh"]))
        let spec = try SpecBuilder.build(config: req.config, hostConfig: try XCTUnwrap(req.hostConfig), image: image,
                                         containerID: "0123456789abcdef", rootfs: "/r", initPath: "/usr/libexec/berth-init")
        let p = try XCTUnwrap(spec.process)
        XCTAssertEqual(p.args, ["/sbin/docker-init", "--", "sleep", "9"])
        XCTAssertEqual(p.user.uid, 1000); XCTAssertEqual(p.user.gid, 1000)
        XCTAssertEqual(p.cwd, "/work")
        XCTAssertEqual(p.rlimits, [Rlimit(type: "RLIMIT_NOFILE", hard: 200, soft: 100)])
        XCTAssertTrue(p.capabilities?.bounding?.contains("CAP_NET_ADMIN") ?? false)
        XCTAssertFalse(p.capabilities?.bounding?.contains("CAP_CHOWN") ?? true)
        XCTAssertEqual(spec.root, Root(path: "/r", readonly: true))
        XCTAssertEqual(spec.hostname, "0123456789ab")
        XCTAssertEqual(spec.linux?.resources?.cpu?.quota, 150_000)
        XCTAssertEqual(spec.linux?.resources?.memory?.swap, 128 * 1024 * 1024)
        let mounts = spec.mounts ?? []
        XCTAssertEqual(mounts.first { $0.destination == "/data" }?.options, ["rbind", "rprivate", "ro"])
        XCTAssertEqual(mounts.first { $0.destination == "/run" }?.options, ["noexec", "nosuid", "nodev", "size=1m"])
        XCTAssertEqual(mounts.first { $0.destination == "/sbin/docker-init" }?.source, "/usr/libexec/berth-init")
    }
}
