import BerthOCI
import BerthSeccomp
import XCTest

final class SeccompCompilerTests: XCTestCase {
    private func mkdirDenied(flags: [String]? = nil) -> Seccomp {
        Seccomp(defaultAction: "SCMP_ACT_ALLOW", flags: flags, syscalls: [
            .init(names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 1),
        ])
    }

    func testDenyingMkdirCompilesToWholeBPFInstructions() throws {
        let filter = try SeccompCompiler.compile(mkdirDenied())
        XCTAssertFalse(filter.instructions.isEmpty)
        XCTAssertEqual(filter.instructions.count % 8, 0)
        XCTAssertEqual(filter.count, filter.instructions.count / 8)
        XCTAssertEqual(filter.flags, 0)
    }

    func testPseudoCodeShowsMkdirNumberAndErrnoAction() throws {
        let pfc = try SeccompCompiler.pseudoCode(mkdirDenied())
        XCTAssertTrue(pfc.contains("filter for syscall \"mkdir\""), pfc)
        XCTAssertTrue(pfc.contains("action ERRNO(1);"), pfc)
        XCTAssertTrue(pfc.contains("action ALLOW;"), pfc)
        #if arch(x86_64)
        XCTAssertTrue(pfc.contains("if ($syscall == 83)"), pfc)  // __NR_mkdir on x86_64
        XCTAssertTrue(pfc.contains("if ($syscall == 258)"), pfc)  // __NR_mkdirat on x86_64
        #endif
    }

    func testDefaultErrnoWithAllowList() throws {
        let profile = Seccomp(defaultAction: "SCMP_ACT_ERRNO", syscalls: [
            .init(names: ["read", "write", "exit_group"], action: "SCMP_ACT_ALLOW"),
        ])
        let pfc = try SeccompCompiler.pseudoCode(profile)
        XCTAssertTrue(pfc.contains("filter for syscall \"exit_group\""), pfc)
        XCTAssertTrue(pfc.contains("action ALLOW;"), pfc)
        XCTAssertTrue(pfc.contains("# default action\n  action ERRNO(1);"), pfc)  // EPERM when unset
    }

    func testDefaultErrnoRetIsHonoured() throws {
        let profile = Seccomp(defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: 38, syscalls: [
            .init(names: ["read"], action: "SCMP_ACT_ALLOW"),
        ])
        let pfc = try SeccompCompiler.pseudoCode(profile)
        XCTAssertTrue(pfc.contains("action ERRNO(38);"), pfc)
    }

    func testTraceUsesErrnoRetAsTraceValueAndDefaultsToEPERM() throws {
        let profile = Seccomp(defaultAction: "SCMP_ACT_ALLOW", syscalls: [
            .init(names: ["mkdir"], action: "SCMP_ACT_TRACE", errnoRet: 7),
            .init(names: ["rmdir"], action: "SCMP_ACT_TRACE"),
        ])
        let pfc = try SeccompCompiler.pseudoCode(profile)
        XCTAssertTrue(pfc.contains("action TRACE(7);"), pfc)
        XCTAssertTrue(pfc.contains("action TRACE(1);"), pfc)
    }

    func testEveryActionCompiles() throws {
        for action in SeccompFeatures.actions where action != "SCMP_ACT_ALLOW" {
            let profile = Seccomp(defaultAction: "SCMP_ACT_ALLOW", syscalls: [.init(names: ["mkdir"], action: action)])
            XCTAssertGreaterThan(try SeccompCompiler.compile(profile).count, 0, action)
        }
    }

    func testArgumentConditionOnArgZero() throws {
        let profile = Seccomp(defaultAction: "SCMP_ACT_ERRNO", syscalls: [
            .init(names: ["personality"], action: "SCMP_ACT_ALLOW", args: [.init(index: 0, value: 8, op: "SCMP_CMP_EQ")]),
        ])
        let pfc = try SeccompCompiler.pseudoCode(profile)
        XCTAssertTrue(pfc.contains("filter for syscall \"personality\""), pfc)
        XCTAssertTrue(pfc.contains("if ($a0.lo32 == 8)"), pfc)
    }

    func testConditionsOnDifferentArgumentsShareOneRule() throws {
        let profile = Seccomp(defaultAction: "SCMP_ACT_ALLOW", syscalls: [
            .init(names: ["socket"], action: "SCMP_ACT_ERRNO", args: [
                .init(index: 0, value: 16, op: "SCMP_CMP_EQ"),
                .init(index: 2, value: 9, op: "SCMP_CMP_EQ"),
            ]),
        ])
        let pfc = try SeccompCompiler.pseudoCode(profile)
        // ANDed: the arg2 test is nested inside the arg0 test, one ERRNO leaf.
        XCTAssertTrue(pfc.contains("$a0"), pfc)
        XCTAssertTrue(pfc.contains("$a2"), pfc)
        XCTAssertEqual(pfc.components(separatedBy: "action ERRNO(1);").count - 1, 1, pfc)
    }

    func testTwoConditionsOnOneIndexBecomeTwoRules() throws {
        let profile = Seccomp(defaultAction: "SCMP_ACT_ERRNO", syscalls: [
            .init(names: ["personality"], action: "SCMP_ACT_ALLOW", args: [
                .init(index: 0, value: 0, op: "SCMP_CMP_EQ"),
                .init(index: 0, value: 8, op: "SCMP_CMP_EQ"),
            ]),
        ])
        let pfc = try SeccompCompiler.pseudoCode(profile)
        XCTAssertTrue(pfc.contains("if ($a0.lo32 == 0)"), pfc)
        XCTAssertTrue(pfc.contains("if ($a0.lo32 == 8)"), pfc)
        let personalityBlock = pfc.components(separatedBy: "filter for syscall \"personality\"")[1]
            .components(separatedBy: "# default action")[0]
        XCTAssertEqual(personalityBlock.components(separatedBy: "action ALLOW;").count - 1, 2, pfc)
    }

    func testMaskedEqualUsesValueAsMaskAndValueTwoAsDatum() throws {
        let profile = Seccomp(defaultAction: "SCMP_ACT_ALLOW", syscalls: [
            .init(names: ["clone"], action: "SCMP_ACT_ERRNO", args: [
                .init(index: 0, value: 0x7E02_0000, valueTwo: 0x1000_0000, op: "SCMP_CMP_MASKED_EQ"),
            ]),
        ])
        let pfc = try SeccompCompiler.pseudoCode(profile)
        XCTAssertTrue(pfc.contains("if ($a0.lo32 & 0x7e020000 == 268435456)"), pfc)
    }

    func testUnknownSyscallNameIsSkipped() throws {
        let profile = Seccomp(defaultAction: "SCMP_ACT_ALLOW", syscalls: [
            .init(names: ["no_such_syscall_2077", "mkdir"], action: "SCMP_ACT_ERRNO"),
        ])
        let pfc = try SeccompCompiler.pseudoCode(profile)
        XCTAssertFalse(pfc.contains("no_such_syscall_2077"), pfc)
        XCTAssertTrue(pfc.contains("filter for syscall \"mkdir\""), pfc)
    }

    func testRuleWithTheDefaultActionIsSkipped() throws {
        let profile = Seccomp(defaultAction: "SCMP_ACT_KILL", syscalls: [
            .init(names: ["mkdir"], action: "SCMP_ACT_KILL_THREAD"),  // same value as SCMP_ACT_KILL
            .init(names: ["read"], action: "SCMP_ACT_ALLOW"),
        ])
        let pfc = try SeccompCompiler.pseudoCode(profile)
        XCTAssertFalse(pfc.contains("\"mkdir\""), pfc)
        XCTAssertTrue(pfc.contains("\"read\""), pfc)
    }

    func testErrnoRuleWithDifferentErrnoThanDefaultIsKept() throws {
        let profile = Seccomp(defaultAction: "SCMP_ACT_ERRNO", syscalls: [
            .init(names: ["mkdir"], action: "SCMP_ACT_ERRNO", errnoRet: 38),
        ])
        XCTAssertTrue(try SeccompCompiler.pseudoCode(profile).contains("action ERRNO(38);"))
    }

    func testExtraArchitecturesGetTheirOwnFiltersAndSocketcallRewrite() throws {
        let profile = Seccomp(defaultAction: "SCMP_ACT_ALLOW",
                              architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                              syscalls: [.init(names: ["socket"], action: "SCMP_ACT_ERRNO")])
        let pfc = try SeccompCompiler.pseudoCode(profile)
        XCTAssertTrue(pfc.contains("# filter for arch x86 "), pfc)
        XCTAssertTrue(pfc.contains("# filter for arch x32 "), pfc)
        // Non-exact rules let libseccomp also match socket() made through socketcall on x86.
        XCTAssertTrue(pfc.contains("filter for syscall \"socketcall\""), pfc)
    }

    func testFlagsMapToSeccompFilterBits() throws {
        func bits(_ flags: [String]) throws -> UInt32 { try SeccompCompiler.compile(mkdirDenied(flags: flags)).flags }
        XCTAssertEqual(try bits([]), 0)
        XCTAssertEqual(try bits(["SECCOMP_FILTER_FLAG_TSYNC"]), 1)
        XCTAssertEqual(try bits(["SECCOMP_FILTER_FLAG_LOG"]), 2)
        XCTAssertEqual(try bits(["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]), 4)
        XCTAssertEqual(try bits(["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]), 6)
        // Only meaningful with a notify listener, which Berth never requests; the kernel would
        // reject the bit without SECCOMP_FILTER_FLAG_NEW_LISTENER.
        XCTAssertEqual(try bits(["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]), 0)
    }

    func testProfileDecodedFromJSON() throws {
        let json = #"""
        {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
         "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
         "syscalls": [
           {"names": ["accept", "read", "write", "close", "exit_group", "future_syscall_x"], "action": "SCMP_ACT_ALLOW"},
           {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
           {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}
         ]}
        """#
        let profile = try JSONDecoder().decode(Seccomp.self, from: Data(json.utf8))
        let filter = try SeccompCompiler.compile(profile)
        XCTAssertGreaterThan(filter.count, 10)
        XCTAssertLessThanOrEqual(filter.count, 4096)  // BPF_MAXINSNS
    }

    // MARK: invalid input

    private func assertRejected(_ profile: Seccomp, code: SeccompError.Code = .invalidArgument,
                                _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try SeccompCompiler.compile(profile)
            XCTFail("compiled, expected \(expected)", file: file, line: line)
        } catch {
            XCTAssertEqual(error.message, expected, file: file, line: line)
            XCTAssertEqual(error.code, code, file: file, line: line)
            XCTAssertEqual("\(error)", expected, file: file, line: line)
        }
        XCTAssertThrowsError(try SeccompCompiler.pseudoCode(profile), file: file, line: line)
    }

    func testUnknownDefaultActionNamesTheField() {
        assertRejected(Seccomp(defaultAction: "SCMP_ACT_FOO"),
                       #"linux.seccomp.defaultAction: unknown action "SCMP_ACT_FOO""#)
    }

    func testUnknownRuleActionNamesTheField() {
        let profile = Seccomp(defaultAction: "SCMP_ACT_ALLOW", syscalls: [
            .init(names: ["read"], action: "SCMP_ACT_ERRNO"),
            .init(names: ["write"], action: "SCMP_ACT_FOO"),
        ])
        assertRejected(profile, #"linux.seccomp.syscalls[1].action: unknown action "SCMP_ACT_FOO""#)
    }

    func testInvalidRuleIsReportedEvenWhenItsSyscallIsUnknown() {
        let profile = Seccomp(defaultAction: "SCMP_ACT_ALLOW", syscalls: [
            .init(names: ["no_such_syscall_2077"], action: "SCMP_ACT_ERRNO",
                  args: [.init(index: 0, value: 1, op: "SCMP_CMP_FOO")]),
        ])
        assertRejected(profile, #"linux.seccomp.syscalls[0].args[0].op: unknown operator "SCMP_CMP_FOO""#)
    }

    func testUnknownArchitectureNamesTheField() {
        assertRejected(Seccomp(defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"]),
                       #"linux.seccomp.architectures[1]: unknown architecture "SCMP_ARCH_VAX""#)
        assertRejected(Seccomp(defaultAction: "SCMP_ACT_ALLOW", architectures: ["x86_64"]),
                       #"linux.seccomp.architectures[0]: unknown architecture "x86_64""#)
    }

    func testUnknownOperatorNamesTheField() {
        let profile = Seccomp(defaultAction: "SCMP_ACT_ALLOW", syscalls: [
            .init(names: ["read"], action: "SCMP_ACT_ERRNO"),
            .init(names: ["read"], action: "SCMP_ACT_LOG"),
            .init(names: ["personality"], action: "SCMP_ACT_ERRNO", args: [.init(index: 0, value: 1, op: "SCMP_CMP_FOO")]),
        ])
        assertRejected(profile, #"linux.seccomp.syscalls[2].args[0].op: unknown operator "SCMP_CMP_FOO""#)
    }

    func testArgumentIndexSixIsRejected() {
        let profile = Seccomp(defaultAction: "SCMP_ACT_ALLOW", syscalls: [
            .init(names: ["personality"], action: "SCMP_ACT_ERRNO", args: [
                .init(index: 5, value: 1, op: "SCMP_CMP_EQ"),
                .init(index: 6, value: 1, op: "SCMP_CMP_EQ"),
            ]),
        ])
        assertRejected(profile,
                       "linux.seccomp.syscalls[0].args[1].index: 6 is out of range (syscall arguments are numbered 0 to 5)")
    }

    func testNotifyIsRejectedAsUnsupported() {
        let rule = Seccomp(defaultAction: "SCMP_ACT_ALLOW", syscalls: [.init(names: ["mkdir"], action: "SCMP_ACT_NOTIFY")])
        assertRejected(rule, code: .unsupported,
                       "linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY needs a listenerPath; seccomp notify is not supported")
        assertRejected(Seccomp(defaultAction: "SCMP_ACT_NOTIFY"), code: .unsupported,
                       "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY needs a listenerPath; seccomp notify is not supported")
    }

    func testUnknownFlagNamesTheField() {
        assertRejected(mkdirDenied(flags: ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_NEW_LISTENER"]),
                       #"linux.seccomp.flags[1]: unknown flag "SECCOMP_FILTER_FLAG_NEW_LISTENER""#)
    }

    func testErrnoRetOnActionWithoutErrnoIsRejected() {
        let profile = Seccomp(defaultAction: "SCMP_ACT_ALLOW", syscalls: [
            .init(names: ["mkdir"], action: "SCMP_ACT_KILL_PROCESS", errnoRet: 1),
        ])
        assertRejected(profile,
                       "linux.seccomp.syscalls[0].errnoRet: 1 given, but SCMP_ACT_KILL_PROCESS takes no errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)")
        assertRejected(Seccomp(defaultAction: "SCMP_ACT_ALLOW", defaultErrnoRet: 1),
                       "linux.seccomp.defaultErrnoRet: 1 given, but SCMP_ACT_ALLOW takes no errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)")
    }

    func testErrnoRetWiderThanSixteenBitsIsRejected() {
        let profile = Seccomp(defaultAction: "SCMP_ACT_ALLOW", syscalls: [
            .init(names: ["mkdir"], action: "SCMP_ACT_ERRNO", errnoRet: 70_000),
        ])
        assertRejected(profile, "linux.seccomp.syscalls[0].errnoRet: 70000 is out of range 0...65535")
    }

    func testEmptyNamesAreRejected() {
        assertRejected(Seccomp(defaultAction: "SCMP_ACT_ALLOW", syscalls: [.init(names: [], action: "SCMP_ACT_ERRNO")]),
                       "linux.seccomp.syscalls[0].names: must contain at least one syscall name")
        assertRejected(Seccomp(defaultAction: "SCMP_ACT_ALLOW", syscalls: [.init(names: ["read", ""], action: "SCMP_ACT_ERRNO")]),
                       "linux.seccomp.syscalls[0].names[1]: empty syscall name")
    }

    // MARK: features

    func testFeaturesListWhatTheCompilerAccepts() throws {
        XCTAssertEqual(Set(SeccompFeatures.actions), [
            "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
            "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG",
        ])
        XCTAssertEqual(SeccompFeatures.operators, [
            "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ",
        ])
        XCTAssertEqual(SeccompFeatures.knownFlags, [
            "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        ])
        XCTAssertFalse(SeccompFeatures.supportedFlags.contains("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"))

        let architectures = SeccompFeatures.architectures
        // Everything runtime-spec lists as of libseccomp 2.5.0.
        for name in ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
                     "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",
                     "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
                     "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC",
                     "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64"] {
            XCTAssertTrue(architectures.contains(name), name)
        }
        // libseccomp only combines architectures of the host's byte order in one filter.
        #if _endian(little)
        for name in ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
                     "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC64LE",
                     "SCMP_ARCH_RISCV64"] {
            let profile = Seccomp(defaultAction: "SCMP_ACT_ALLOW", architectures: [name],
                                  syscalls: [.init(names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO")])
            XCTAssertGreaterThan(try SeccompCompiler.compile(profile).count, 0, name)
        }
        #endif
    }

    func testArchitectureOfOtherByteOrderIsRejected() {
        #if _endian(little)
        let foreign = "SCMP_ARCH_S390X"
        #else
        let foreign = "SCMP_ARCH_X86_64"
        #endif
        assertRejected(Seccomp(defaultAction: "SCMP_ACT_ALLOW", architectures: [foreign]), code: .invalidArgument,
                       "linux.seccomp.architectures[0]: \(foreign) cannot be combined with the host's architecture (different byte order)")
    }
}
