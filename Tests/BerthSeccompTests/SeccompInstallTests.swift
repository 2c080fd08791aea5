import BerthOCI
import BerthSeccomp
import Foundation
import XCTest

/// Installs a compiled filter in a real process. Swift must not run code between fork() and
/// exec(), so the child is a python3 script that installs the raw bytes through ctypes, as the
/// runtime's C child will.
final class SeccompInstallTests: XCTestCase {
    private static let installAndMkdir = #"""
    import ctypes, os, platform, sys
    program_path, flags, target = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    data = open(program_path, "rb").read()
    libc = ctypes.CDLL(None, use_errno=True)

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buffer = ctypes.create_string_buffer(data, len(data))
    program = SockFprog(len(data) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    ulong = ctypes.c_ulong
    if libc.prctl(38, ulong(1), ulong(0), ulong(0), ulong(0)) != 0:  # PR_SET_NO_NEW_PRIVS
        print("prctl-errno=%d" % ctypes.get_errno()); sys.exit(2)
    seccomp_nr = {"x86_64": 317, "aarch64": 277, "riscv64": 277, "ppc64le": 358, "s390x": 348}[platform.machine()]
    # SECCOMP_SET_MODE_FILTER = 1
    if libc.syscall(ctypes.c_long(seccomp_nr), ulong(1), ulong(flags), ctypes.byref(program)) != 0:
        print("seccomp-errno=%d" % ctypes.get_errno()); sys.exit(3)

    def attempt(call):
        try:
            call(); return 0
        except OSError as error:
            return error.errno

    dir_fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
    print("mkdir=%d" % attempt(lambda: os.mkdir(os.path.join(target, "by-mkdir"))))
    print("mkdirat=%d" % attempt(lambda: os.mkdir("by-mkdirat", dir_fd=dir_fd)))
    print("create=%d" % attempt(lambda: os.close(os.open(os.path.join(target, "file"), os.O_CREAT | os.O_WRONLY))))
    """#

    func testInstalledFilterMakesMkdirFailWithEPERM() throws {
        let python = "/usr/bin/python3"
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: python), "needs \(python)")

        let profile = Seccomp(defaultAction: "SCMP_ACT_ALLOW", flags: ["SECCOMP_FILTER_FLAG_LOG"], syscalls: [
            .init(names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: UInt32(EPERM)),
        ])
        let filter = try SeccompCompiler.compile(profile)

        let work = FileManager.default.temporaryDirectory.appendingPathComponent("berth-seccomp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let programFile = work.appendingPathComponent("filter.bpf")
        try Data(filter.instructions).write(to: programFile)
        let target = work.appendingPathComponent("target")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: false)

        let child = Process()
        child.executableURL = URL(fileURLWithPath: python)
        child.arguments = ["-c", Self.installAndMkdir, programFile.path, String(filter.flags), target.path]
        let stdout = Pipe()
        let stderr = Pipe()
        child.standardOutput = stdout
        child.standardError = stderr
        try child.run()
        let output = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let errors = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        child.waitUntilExit()

        XCTAssertEqual(child.terminationStatus, 0, output + errors)
        let results = output.split(separator: "\n").map(String.init)
        XCTAssertEqual(results, ["mkdir=1", "mkdirat=1", "create=0"], errors)  // EPERM is 1
        XCTAssertFalse(FileManager.default.fileExists(atPath: target.appendingPathComponent("by-mkdir").path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: target.appendingPathComponent("by-mkdirat").path))
    }
}
