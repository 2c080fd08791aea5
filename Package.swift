// swift-tools-version: 6.1
import PackageDescription

// The folder tree is the architecture: leaf modules (spec types, OS calls, cgroups, seccomp)
// know nothing of the runtime that composes them; executables only parse arguments and wire.
let package = Package(
    name: "Berth",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "berth-runtime", targets: ["berth-runtime"]),
        .executable(name: "berthd", targets: ["berthd"]),
        .executable(name: "berth", targets: ["berth"]),
        .executable(name: "berth-registry", targets: ["berth-registry"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    // Two C executables are not targets: SwiftPM links every executable through swiftc and the
    // Swift runtime, which neither needs. scripts/build-c.sh builds them with cc:
    //   Sources/berth-monitor  the per-container monitor (like conmon): stdio, log, reaping, exit code
    //   Sources/berth-init     the static PID 1 of `--init`
    targets: [
        // The only code that runs between clone() and execve(): async-signal-safe C.
        .target(name: "CBerthSys"),
        // libseccomp from Debian (libseccomp-dev) compiles OCI seccomp rules to BPF.
        .systemLibrary(name: "CSeccomp", pkgConfig: "libseccomp", providers: [.apt(["libseccomp-dev"])]),
        // OpenSSL's SHA-256 from Debian (libssl-dev): hardware-accelerated digests.
        .systemLibrary(name: "CCryptoHash", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // OCI runtime-spec and image-spec types: pure values (and their digests), no I/O.
        .target(name: "BerthOCI", dependencies: ["CCryptoHash"]),
        // Thin Swift layer over the system calls the runtime needs outside the child.
        .target(name: "BerthOS", dependencies: ["CBerthSys"]),
        .target(name: "BerthCgroups", dependencies: ["BerthOCI", "CBerthSys"]),
        .target(name: "BerthSeccomp", dependencies: ["BerthOCI", "CSeccomp"]),
        .target(name: "BerthRuntime", dependencies: ["BerthOCI", "BerthOS", "BerthCgroups", "BerthSeccomp", "CBerthSys"]),
        .executableTarget(name: "berth-runtime", dependencies: ["BerthRuntime", "BerthOCI", "CBerthSys"]),
        // libarchive from Debian (libarchive-dev) reads and writes layer tars.
        .systemLibrary(name: "CArchive", pkgConfig: "libarchive", providers: [.apt(["libarchive-dev"])]),
        // Images: content-addressed store in OCI layout, layer unpacking, archives.
        .target(name: "BerthImages", dependencies: ["BerthOCI", "BerthOS", "CArchive"]),
        // HTTP/1.1 serving over swift-nio: listening, routing by method and pattern, streamed
        // bodies and responses, hijacked connections. Knows nothing of Docker or registries.
        .target(name: "BerthHTTP", dependencies: [
            "BerthOS",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        // The Docker Engine API over HTTP: a thin translation onto the engine.
        .target(name: "BerthAPI", dependencies: [
            "BerthEngine", "BerthOS", "BerthHTTP", "BerthDistribution", "BerthNetwork",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        // Networking, bottom up. libnl from Debian (libnl-route-3-dev) speaks rtnetlink: links,
        // addresses, routes. CBerthNet holds the C that must run on its own thread: entering a
        // network namespace (setns changes only the calling thread) and the libnl calls made there.
        .systemLibrary(name: "CNetlink", pkgConfig: "libnl-route-3.0", providers: [.apt(["libnl-route-3-dev"])]),
        .target(name: "CBerthNet", dependencies: ["CNetlink"]),
        // Network namespaces, links (bridge, veth, macvlan), addresses and routes.
        .target(name: "BerthNetlink", dependencies: ["CBerthNet", "BerthOS"]),
        // libnftables from Debian (libnftables-dev): Berth's own table of NAT and filter rules.
        .systemLibrary(name: "CNFTables", pkgConfig: "libnftables", providers: [.apt(["libnftables-dev"])]),
        .target(name: "BerthFirewall", dependencies: ["CNFTables", "BerthNetlink", "BerthOS"]),
        // The embedded DNS server: container names on a network, everything else forwarded.
        .target(name: "BerthDNS", dependencies: [
            "BerthOS",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        // Docker's network model on top of those: IPAM, bridge/macvlan drivers, endpoints,
        // published ports, and the files (/etc/hosts, resolv.conf) a container sees.
        .target(name: "BerthNetwork", dependencies: [
            "BerthNetlink", "BerthFirewall", "BerthDNS", "BerthOS",
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        // Named volumes (local driver): directories and their metadata; knows nothing of containers.
        .target(name: "BerthVolumes", dependencies: ["BerthOS", "CBerthSys"]),
        // The engine: containers, images, volumes as one system; knows nothing of HTTP.
        .target(name: "BerthEngine", dependencies: ["BerthOCI", "BerthOS", "BerthImages", "BerthVolumes", "BerthCgroups", "BerthDistribution", "BerthNetwork", "BerthDNS"]),
        .executableTarget(name: "berthd", dependencies: ["BerthAPI", "BerthEngine", "BerthNetwork", "BerthOS"]),
        // OCI distribution client: pull and push through registries (auth, mirrors, resumable
        // verified downloads streamed into the image store).
        .target(name: "BerthDistribution", dependencies: [
            "BerthOCI", "BerthOS", "BerthImages", "CBerthSys",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        // The registry server (`berth registry serve`): distribution-spec API over a
        // content-addressed filesystem store. Knows nothing of the engine.
        // libxcrypt from Debian (libcrypt-dev): crypt_r for htpasswd's bcrypt hashes.
        .systemLibrary(name: "CCrypt", pkgConfig: "libxcrypt", providers: [.apt(["libcrypt-dev"])]),
        .target(name: "BerthRegistry", dependencies: [
            "BerthOCI", "BerthOS", "BerthHTTP", "CCrypt",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOTLS", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),
        .executableTarget(name: "berth-registry", dependencies: ["BerthRegistry", "BerthOS"]),
        // A Docker Engine API client (unix socket or TCP; streams, hijack) for the berth CLI.
        .target(name: "BerthClient", dependencies: ["BerthOS"]),
        // berth: docker-style commands over BerthClient. Talks to berthd or dockerd alike.
        .executableTarget(name: "berth", dependencies: ["BerthClient", "BerthOS"]),
        .testTarget(name: "BerthOCITests", dependencies: ["BerthOCI"]),
        .testTarget(name: "BerthOSTests", dependencies: ["BerthOS"]),
        .testTarget(name: "BerthCgroupsTests", dependencies: ["BerthCgroups", "BerthOCI"]),
        .testTarget(name: "BerthSeccompTests", dependencies: ["BerthSeccomp", "BerthOCI"]),
        .testTarget(name: "BerthRuntimeCLITests", dependencies: ["berth-runtime"]),
        .testTarget(name: "BerthImagesTests", dependencies: ["BerthImages", "BerthOCI"]),
        // What the server test targets share: temporary directories, async-from-sync.
        .target(name: "BerthTestSupport", dependencies: ["BerthOS"], path: "Tests/BerthTestSupport"),
        .testTarget(name: "BerthAPITests", dependencies: ["BerthAPI", "BerthOS", "BerthTestSupport"]),
        .testTarget(name: "BerthHTTPTests", dependencies: ["BerthHTTP", "BerthTestSupport"]),
        .testTarget(name: "BerthEngineTests", dependencies: ["BerthEngine", "BerthOCI", "BerthOS"]),
        .testTarget(name: "BerthVolumesTests", dependencies: ["BerthVolumes", "CBerthSys"]),
        .testTarget(name: "BerthClientTests", dependencies: ["BerthClient", "berth"]),
        .testTarget(name: "BerthDistributionTests", dependencies: ["BerthDistribution", "BerthOCI"]),
        .testTarget(name: "BerthRegistryTests", dependencies: ["BerthRegistry", "BerthOCI"]),
        .testTarget(name: "BerthNetlinkTests", dependencies: ["BerthNetlink", "BerthOS"]),
        .testTarget(name: "BerthFirewallTests", dependencies: ["BerthFirewall", "BerthNetlink"]),
        .testTarget(name: "BerthDNSTests", dependencies: ["BerthDNS"]),
        .testTarget(name: "BerthNetworkTests", dependencies: ["BerthNetwork"]),
        .testTarget(name: "BerthRuntimeTests", dependencies: ["BerthRuntime", "BerthOCI", "BerthOS", "CBerthSys"]),
    ],
    swiftLanguageModes: [.v6]
)
