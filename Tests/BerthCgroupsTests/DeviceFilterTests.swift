@testable import BerthCgroups
import BerthOCI
import XCTest

final class DeviceFilterTests: XCTestCase {
    /// Runs the program the way the kernel would for one access request.
    private func verdict(_ program: [BPFInstruction], type: DeviceFilter.DeviceType, access: String,
                         major: UInt32, minor: UInt32) -> UInt64 {
        var accessBits: UInt32 = 0
        for c in access {
            accessBits |= c == "r" ? 2 : c == "w" ? 4 : 1
        }
        let context: [UInt32] = [UInt32(type.rawValue) | accessBits << 16, major, minor]
        var registers = [UInt64](repeating: 0, count: 11)
        var pc = 0
        var steps = 0
        while pc < program.count {
            steps += 1
            XCTAssertLessThan(steps, 10_000, "program does not terminate")
            let insn = program[pc]
            let dst = Int(insn.dst), src = Int(insn.src)
            let imm = UInt64(bitPattern: Int64(insn.immediate))
            pc += 1
            switch insn.opcode {
            case BPFInstruction.loadWord:
                XCTAssertEqual(src, 1)
                registers[dst] = UInt64(context[Int(insn.offset) / 4])
            case BPFInstruction.and32Imm: registers[dst] = UInt64(UInt32(truncatingIfNeeded: registers[dst]) & UInt32(truncatingIfNeeded: imm))
            case BPFInstruction.rsh32Imm: registers[dst] = UInt64(UInt32(truncatingIfNeeded: registers[dst]) >> UInt32(imm))
            case BPFInstruction.mov32Imm: registers[dst] = UInt64(UInt32(truncatingIfNeeded: imm))
            case BPFInstruction.mov32Reg: registers[dst] = UInt64(UInt32(truncatingIfNeeded: registers[src]))
            case BPFInstruction.jeqImm: if registers[dst] == imm { pc += Int(insn.offset) }
            case BPFInstruction.jneImm: if registers[dst] != imm { pc += Int(insn.offset) }
            case BPFInstruction.jneReg: if registers[dst] != registers[src] { pc += Int(insn.offset) }
            case BPFInstruction.exit: return registers[0]
            default: XCTFail("unexpected opcode \(insn.opcode)"); return 99
            }
        }
        XCTFail("fell off the end of the program")
        return 99
    }

    func testEmptyRuleListDeniesEverything() throws {
        let program = try DeviceFilter.program(for: [])
        XCTAssertEqual(program.count, 8)  // 6 loads/shifts, then "r0 = 0; exit"
        XCTAssertEqual(program[6], BPFInstruction(opcode: BPFInstruction.mov32Imm, dst: 0, immediate: 0))
        XCTAssertEqual(program[7].opcode, BPFInstruction.exit)
        XCTAssertEqual(verdict(program, type: .char, access: "r", major: 1, minor: 3), 0)
        XCTAssertEqual(verdict(program, type: .block, access: "m", major: 8, minor: 0), 0)
    }

    func testAllowAllRuleYieldsAccept() throws {
        let program = try DeviceFilter.program(for: [.init(allow: true, type: "a", access: "rwm")])
        XCTAssertEqual(program.count, 8)
        XCTAssertEqual(program[6], BPFInstruction(opcode: BPFInstruction.mov32Imm, dst: 0, immediate: 1))
        XCTAssertEqual(program[7].opcode, BPFInstruction.exit)
        XCTAssertEqual(verdict(program, type: .char, access: "rwm", major: 5, minor: 1), 1)
    }

    func testPrologueLoadsTheDeviceContext() throws {
        let program = try DeviceFilter.program(for: [])
        XCTAssertEqual(program.prefix(6).map(\.description), [
            "r2 = *(u32 *)(r1 + 0)", "w2 &= 65535", "r3 = *(u32 *)(r1 + 0)", "w3 >>= 16",
            "r4 = *(u32 *)(r1 + 4)", "r5 = *(u32 *)(r1 + 8)",
        ])
    }

    func testOneRuleBlockStructure() throws {
        // deny all, allow c 1:3 rw: one block of type, access (3), major, minor tests + verdict.
        let program = try DeviceFilter.program(for: [
            .init(allow: false, access: "rwm"),
            .init(allow: true, type: "c", major: 1, minor: 3, access: "rw"),
        ])
        XCTAssertEqual(program.count, 6 + 6 + 2 + 2)
        XCTAssertEqual(program[6...].map(\.description), [
            "if r2 != 2 goto +7", "w1 = w3", "w1 &= 6", "if r1 != r3 goto +4",
            "if r4 != 1 goto +3", "if r5 != 3 goto +2", "w0 = 1", "exit", "w0 = 0", "exit",
        ])
        XCTAssertEqual(verdict(program, type: .char, access: "rw", major: 1, minor: 3), 1)
        XCTAssertEqual(verdict(program, type: .char, access: "m", major: 1, minor: 3), 0)
        XCTAssertEqual(verdict(program, type: .block, access: "r", major: 1, minor: 3), 0)
        XCTAssertEqual(verdict(program, type: .char, access: "r", major: 1, minor: 5), 0)
    }

    func testLastMatchingRuleWins() throws {
        // runc's default container allowlist shape, then a deny punched into a wildcard.
        let rules: [Resources.DeviceCgroup] = [
            .init(allow: false, access: "rwm"),
            .init(allow: true, type: "c", major: nil, minor: nil, access: "m"),
            .init(allow: true, type: "b", major: nil, minor: nil, access: "m"),
            .init(allow: true, type: "c", major: 1, minor: 3, access: "rwm"),
            .init(allow: true, type: "c", major: 136, minor: nil, access: "rwm"),
            .init(allow: false, type: "c", major: 136, minor: 5, access: "w"),
        ]
        let program = try DeviceFilter.program(for: rules)
        XCTAssertEqual(verdict(program, type: .char, access: "rw", major: 1, minor: 3), 1)
        XCTAssertEqual(verdict(program, type: .char, access: "m", major: 4, minor: 4), 1)
        XCTAssertEqual(verdict(program, type: .block, access: "m", major: 8, minor: 0), 1)
        XCTAssertEqual(verdict(program, type: .block, access: "r", major: 8, minor: 0), 0)
        XCTAssertEqual(verdict(program, type: .char, access: "rw", major: 136, minor: 2), 1)
        XCTAssertEqual(verdict(program, type: .char, access: "r", major: 136, minor: 5), 1)
        XCTAssertEqual(verdict(program, type: .char, access: "rw", major: 136, minor: 5), 0)
        XCTAssertEqual(verdict(program, type: .char, access: "r", major: 1, minor: 5), 0)
    }

    func testAllowAllThenDenyOneIsABlocklist() throws {
        let program = try DeviceFilter.program(for: [
            .init(allow: false, type: "c", major: 1, minor: 3),  // overridden by the allow-all after it
            .init(allow: true),
            .init(allow: false, type: "b", major: 8, minor: nil, access: "rwm"),
        ])
        XCTAssertEqual(program.count, 6 + (1 + 1 + 2) + 2)
        XCTAssertEqual(program[program.count - 2], BPFInstruction(opcode: BPFInstruction.mov32Imm, dst: 0, immediate: 1))
        XCTAssertEqual(verdict(program, type: .char, access: "rw", major: 1, minor: 3), 1)
        XCTAssertEqual(verdict(program, type: .block, access: "r", major: 8, minor: 1), 0)
        XCTAssertEqual(verdict(program, type: .block, access: "r", major: 9, minor: 1), 1)
    }

    func testRulesAgreeingWithDefaultBeforeAnyOtherAreDropped() throws {
        let program = try DeviceFilter.program(for: [
            .init(allow: false, type: "c", major: 1, minor: 3),
            .init(allow: true, type: "c", major: 1, minor: 5),
        ])
        XCTAssertEqual(program.count, 6 + (1 + 2 + 2) + 2)
    }

    func testInstructionEncoding() {
        let jump = BPFInstruction(opcode: BPFInstruction.jneReg, dst: 1, src: 3, offset: 4)
        XCTAssertEqual(jump.bytes, [0x5d, 0x31, 4, 0, 0, 0, 0, 0])
        let mov = BPFInstruction(opcode: BPFInstruction.mov32Imm, dst: 0, immediate: -2)
        XCTAssertEqual(mov.bytes, [0xb4, 0x00, 0, 0, 0xfe, 0xff, 0xff, 0xff])
    }

    func testInvalidRulesAreRejected() {
        XCTAssertThrowsError(try DeviceFilter.program(for: [.init(allow: true, type: "p")]))
        XCTAssertThrowsError(try DeviceFilter.program(for: [.init(allow: true, type: "c", access: "x")]))
        XCTAssertThrowsError(try DeviceFilter.program(for: [.init(allow: true, type: "c", major: -5)]))
        XCTAssertThrowsError(try DeviceFilter.program(for: [.init(allow: true, type: "c", major: 1 << 40)]))
    }
}
