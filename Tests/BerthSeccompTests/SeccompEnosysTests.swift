import BerthOCI
import BerthSeccomp
import XCTest

/// The compiled program (ENOSYS prefix + libseccomp's filter) run by a small classic-BPF
/// interpreter on made-up `seccomp_data`, so the verdicts are checked without installing a filter.
final class SeccompEnosysTests: XCTestCase {
    static let auditX86_64: UInt32 = 0xC000_003E
    static let auditI386: UInt32 = 0x4000_0003
    static let auditAArch64: UInt32 = 0xC000_00B7
    static let x32Bit: Int32 = 0x4000_0000

    static let allow: UInt32 = 0x7FFF_0000
    static func errno(_ e: UInt32) -> UInt32 { 0x0005_0000 | e }

    /// An allow-list in Docker's shape: default EPERM, a rule with its own errno, clone without
    /// namespace flags, and futex_waitv (449) as its newest syscall.
    static let allowList = Seccomp(
        defaultAction: "SCMP_ACT_ERRNO", architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        syscalls: [
            .init(names: ["read", "write", "exit_group", "futex_waitv"], action: "SCMP_ACT_ALLOW"),
            .init(names: ["mkdir"], action: "SCMP_ACT_ERRNO", errnoRet: 13),
            .init(names: ["clone"], action: "SCMP_ACT_ALLOW",
                  args: [Seccomp.Arg(index: 0, value: 0x7E02_0000, op: "SCMP_CMP_MASKED_EQ")]),
        ])

    /// Runs `program` on one syscall; nil (and a failure) on an instruction it does not know.
    static func run(_ program: [UInt8], arch: UInt32, nr: Int32, args: [UInt64] = []) -> UInt32? {
        var data = [UInt8](repeating: 0, count: 64)  // struct seccomp_data
        func put<T>(_ value: T, at offset: Int) { withUnsafeBytes(of: value) { data.replaceSubrange(offset..<offset + $0.count, with: $0) } }
        put(nr, at: 0)
        put(arch, at: 4)
        for (i, a) in args.enumerated() { put(a, at: 16 + 8 * i) }
        func word(_ offset: UInt32) -> UInt32 {
            data[Int(offset)..<Int(offset) + 4].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
        }
        var a: UInt32 = 0, x: UInt32 = 0, memory = [UInt32](repeating: 0, count: 16), pc = 0
        while pc < program.count / 8 {
            let raw = program[pc * 8..<pc * 8 + 8]
            let code = raw.withUnsafeBytes { $0.loadUnaligned(as: UInt16.self) }
            let jt = Int(raw[raw.startIndex + 2]), jf = Int(raw[raw.startIndex + 3])
            let k = raw.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self) }
            pc += 1
            func branch(_ taken: Bool) { pc += taken ? jt : jf }
            switch code {
            case 0x20: a = word(k)                    // ld [k]
            case 0x00: a = k                          // ld #k
            case 0x01: x = k                          // ldx #k
            case 0x60: a = memory[Int(k)]             // ld M[k]
            case 0x61: x = memory[Int(k)]             // ldx M[k]
            case 0x02: memory[Int(k)] = a             // st M[k]
            case 0x03: memory[Int(k)] = x             // stx M[k]
            case 0x54: a &= k                         // and #k
            case 0x44: a |= k                         // or #k
            case 0x07: x = a                          // tax
            case 0x87: a = x                          // txa
            case 0x05: pc += Int(k)                   // ja
            case 0x15: branch(a == k)                 // jeq #k
            case 0x25: branch(a > k)                  // jgt #k
            case 0x35: branch(a >= k)                 // jge #k
            case 0x45: branch(a & k != 0)             // jset #k
            case 0x1D: branch(a == x)
            case 0x2D: branch(a > x)
            case 0x3D: branch(a >= x)
            case 0x4D: branch(a & x != 0)
            case 0x06: return k                       // ret #k
            case 0x16: return a                       // ret a
            default:
                XCTFail("BPF instruction 0x\(String(code, radix: 16)) at \(pc - 1) is not interpreted")
                return nil
            }
        }
        XCTFail("program ran off its end")
        return nil
    }

    func testSyscallsAboveTheProfilesNewestGetENOSYSOthersTheDefault() throws {
        #if !arch(x86_64)
        throw XCTSkip("syscall numbers below are x86_64's")
        #else
        let program = try SeccompCompiler.compile(Self.allowList).instructions
        func verdict(_ arch: UInt32, _ nr: Int32, _ args: [UInt64] = []) -> UInt32? {
            Self.run(program, arch: arch, nr: nr, args: args)
        }
        // x86_64: read 0, open 2, mkdir 83, clone 56, futex_waitv 449.
        XCTAssertEqual(verdict(Self.auditX86_64, 0), Self.allow)
        XCTAssertEqual(verdict(Self.auditX86_64, 449), Self.allow)
        XCTAssertEqual(verdict(Self.auditX86_64, 2), Self.errno(1), "known but not listed: the default EPERM")
        XCTAssertEqual(verdict(Self.auditX86_64, 83), Self.errno(13), "a rule's own errno")
        XCTAssertEqual(verdict(Self.auditX86_64, 450), Self.errno(38), "newer than the profile: ENOSYS")
        XCTAssertEqual(verdict(Self.auditX86_64, 1000), Self.errno(38))
        XCTAssertEqual(verdict(Self.auditX86_64, 56, [0x003D_0F00]), Self.allow, "clone for a thread")
        XCTAssertEqual(verdict(Self.auditX86_64, 56, [0x1000_0000 | 0x11]), Self.errno(1), "clone(CLONE_NEWUSER)")
        XCTAssertEqual(verdict(Self.auditX86_64, 56, [0x4000_0000]), Self.errno(1), "clone(CLONE_NEWNET)")
        // x32 numbers carry bit 30 and are bounded by x32's own table.
        XCTAssertEqual(verdict(Self.auditX86_64, Self.x32Bit | 0), Self.allow)
        XCTAssertEqual(verdict(Self.auditX86_64, Self.x32Bit | 2), Self.errno(1))
        XCTAssertEqual(verdict(Self.auditX86_64, Self.x32Bit | 1000), Self.errno(38))
        // i386: read 3, open 5.
        XCTAssertEqual(verdict(Self.auditI386, 3), Self.allow)
        XCTAssertEqual(verdict(Self.auditI386, 5), Self.errno(1))
        XCTAssertEqual(verdict(Self.auditI386, 1000), Self.errno(38))
        // An architecture the filter does not cover keeps libseccomp's bad-architecture action.
        XCTAssertNotEqual(verdict(Self.auditAArch64, 1000), Self.errno(38))
        XCTAssertNotEqual(verdict(Self.auditAArch64, 1000), Self.allow)
        #endif
    }

    func testNoStubWhenTheDefaultAllowsOrAlreadyAnswersENOSYS() throws {
        let denyList = Seccomp(defaultAction: "SCMP_ACT_ALLOW", syscalls: [.init(names: ["mkdir"], action: "SCMP_ACT_ERRNO")])
        let program = try SeccompCompiler.compile(denyList).instructions
        XCTAssertEqual(Self.run(program, arch: SeccompEnosysTests.nativeAudit, nr: 1000), Self.allow)

        var enosys = Self.allowList
        enosys.defaultErrnoRet = 38
        let withStub = try SeccompCompiler.compile(Self.allowList).count
        XCTAssertLessThan(try SeccompCompiler.compile(enosys).count, withStub)
    }

    #if arch(arm64)
    static let nativeAudit = auditAArch64
    #else
    static let nativeAudit = auditX86_64
    #endif
}
