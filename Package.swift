// swift-tools-version: 6.1
import PackageDescription

// The folder tree is the architecture: leaf modules (spec types, OS calls, cgroups, seccomp)
// know nothing of the runtime that composes them; executables only parse arguments and wire.
let package = Package(
    name: "Berth",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "berth-runtime", targets: ["berth-runtime"]),
    ],
    dependencies: [],
    targets: [
        // The only code that runs between clone() and execve(): async-signal-safe C.
        .target(name: "CBerthSys"),
        // libseccomp from Debian (libseccomp-dev) compiles OCI seccomp rules to BPF.
        .systemLibrary(name: "CSeccomp", pkgConfig: "libseccomp", providers: [.apt(["libseccomp-dev"])]),
        // OCI runtime-spec types: pure values, no I/O.
        .target(name: "BerthOCI"),
        // Thin Swift layer over the system calls the runtime needs outside the child.
        .target(name: "BerthOS", dependencies: ["CBerthSys"]),
        .target(name: "BerthCgroups", dependencies: ["BerthOCI", "CBerthSys"]),
        .target(name: "BerthSeccomp", dependencies: ["BerthOCI", "CSeccomp"]),
        .target(name: "BerthRuntime", dependencies: ["BerthOCI", "BerthOS", "BerthCgroups", "BerthSeccomp", "CBerthSys"]),
        .executableTarget(name: "berth-runtime", dependencies: ["BerthRuntime", "BerthOCI"]),
        .testTarget(name: "BerthOCITests", dependencies: ["BerthOCI"]),
        .testTarget(name: "BerthCgroupsTests", dependencies: ["BerthCgroups", "BerthOCI"]),
        .testTarget(name: "BerthSeccompTests", dependencies: ["BerthSeccomp", "BerthOCI"]),
        .testTarget(name: "BerthRuntimeCLITests", dependencies: ["berth-runtime"]),
        .testTarget(name: "BerthRuntimeTests", dependencies: ["BerthRuntime", "BerthOCI", "CBerthSys"]),
    ],
    swiftLanguageModes: [.v6]
)
