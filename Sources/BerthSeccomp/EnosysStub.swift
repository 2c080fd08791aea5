import CSeccomp
import Glibc

/// A BPF prefix answering ENOSYS for every syscall number above the largest one a profile names,
/// per architecture, as runc prepends to its filters (libcontainer/seccomp/patchbpf).
///
/// Why: with an allow-list and a default of EPERM, a syscall newer than the profile fails with
/// EPERM, and libc, which falls back to an older call only on ENOSYS (fchmodat2, clone3 and the
/// like), then fails where it would have worked. Docker's behaviour here is runc's, so Berth's
/// filters behave the same way.
///
/// The prefix only reads the architecture and syscall number; it returns ENOSYS or jumps to the
/// first instruction of libseccomp's program, which reloads whatever it needs. Jumps in BPF are
/// relative, so prepending leaves libseccomp's program valid.
enum EnosysStub {
    /// libseccomp's tokens are the kernel's AUDIT_ARCH values, except x32: the kernel reports x32
    /// calls as x86_64 ones with bit 30 set in the number.
    static let x86_64: UInt32 = 0xC000_003E
    static let x32: UInt32 = 0x4000_003E
    static let x32SyscallBit: UInt32 = 0x4000_0000
    /// s390 multiplexes unknown syscall numbers through setup(0), which a number bound cannot
    /// catch; runc special-cases it. Berth does not run there, so those keep the default action.
    static let s390: Set<UInt32> = [0x0000_0016, 0x8000_0016]

    /// Whether a filter with this default action gets the stub: not when everything unknown is
    /// allowed anyway, nor when the default already answers ENOSYS (runc's rule).
    static func applies(toDefault action: UInt32) -> Bool {
        action != SCMP_ACT_ALLOW && action != SCMP_ACT_LOG
            && action != SeccompVocabulary.actErrnoBase | UInt32(ENOSYS)
    }

    /// The largest number among `names` on each architecture in `architectures` (libseccomp
    /// tokens). Names unknown there, and the negative pseudo-numbers of multiplexed calls, are
    /// ignored; an architecture with no known name gets no bound.
    static func largestSyscalls(names: [String], architectures: [UInt32]) -> [(token: UInt32, largest: UInt32)] {
        var seen = Set<UInt32>()
        return architectures.filter { seen.insert($0).inserted && !s390.contains($0) }.compactMap { token in
            let numbers = names.map { seccomp_syscall_resolve_name_arch(token, $0) }.filter { $0 >= 0 }
            return numbers.max().map { (token, UInt32($0)) }
        }
    }

    /// The stub's `struct sock_filter` instructions (host byte order) for `bounds`.
    static func instructions(bounds: [(token: UInt32, largest: UInt32)]) throws(SeccompError) -> [UInt8] {
        // Sections per kernel architecture; x86_64 and x32 share one, split on bit 30.
        var sections: [(audit: UInt32, native: UInt32?, x32: UInt32?)] = []
        for (token, largest) in bounds {
            let audit = token == x32 ? x86_64 : token
            if let i = sections.firstIndex(where: { $0.audit == audit }) {
                if token == x32 { sections[i].x32 = largest } else { sections[i].native = largest }
            } else {
                sections.append(token == x32 ? (audit, nil, largest) : (audit, largest, nil))
            }
        }
        if sections.isEmpty { return [] }

        var program = Program()
        program.load(offset: 4)  // seccomp_data.arch
        let labels = sections.map { _ in program.newLabel() }
        for (section, label) in zip(sections, labels) {
            program.jump(.equal, section.audit, ifTrue: .label(label), ifFalse: .next)
        }
        program.jump(to: .filter)  // another architecture: libseccomp's program decides
        for (section, label) in zip(sections, labels) {
            program.place(label)
            program.load(offset: 0)  // seccomp_data.nr
            if section.audit == x86_64 {
                let x32Part = program.newLabel()
                program.jump(.bitsSet, x32SyscallBit, ifTrue: .label(x32Part), ifFalse: .next)
                program.bound(section.native)
                program.place(x32Part)
                program.bound(section.x32)
            } else {
                program.bound(section.native)
            }
        }
        program.place(program.enosysLabel)
        program.returnErrno(UInt32(ENOSYS))
        return try program.assemble()
    }

    /// A few BPF instructions with symbolic forward jumps, resolved by `assemble`.
    private struct Program {
        enum Target { case next, filter, label(Int) }
        enum Condition: UInt16 { case equal = 0x10, greater = 0x20, bitsSet = 0x40 }  // BPF_JEQ, BPF_JGT, BPF_JSET

        private struct Instruction {
            var code: UInt16
            var k: UInt32 = 0
            var jt: Target = .next
            var jf: Target = .next
            var always: Target?  // BPF_JA: the target goes in k
        }

        private var instructions: [Instruction] = []
        private var positions: [Int: Int] = [:]
        private var labelCount = 0
        let enosysLabel = 0

        init() { labelCount = 1 }

        mutating func newLabel() -> Int { labelCount += 1; return labelCount - 1 }
        mutating func place(_ label: Int) { positions[label] = instructions.count }

        mutating func load(offset: UInt32) {
            instructions.append(Instruction(code: 0x20, k: offset))  // BPF_LD|BPF_W|BPF_ABS
        }
        mutating func jump(_ condition: Condition, _ k: UInt32, ifTrue: Target, ifFalse: Target) {
            instructions.append(Instruction(code: 0x05 | condition.rawValue, k: k, jt: ifTrue, jf: ifFalse))  // BPF_JMP|BPF_K
        }
        mutating func jump(to target: Target) {
            instructions.append(Instruction(code: 0x05, always: target))  // BPF_JMP|BPF_JA
        }
        /// Numbers above `largest` get ENOSYS; the rest go to the filter.
        mutating func bound(_ largest: UInt32?) {
            if let largest { jump(.greater, largest, ifTrue: .label(enosysLabel), ifFalse: .next) }
            jump(to: .filter)
        }
        mutating func returnErrno(_ errno: UInt32) {
            instructions.append(Instruction(code: 0x06, k: SeccompVocabulary.actErrnoBase | errno))  // BPF_RET|BPF_K
        }

        func assemble() throws(SeccompError) -> [UInt8] {
            func offset(_ target: Target, from pc: Int) throws(SeccompError) -> Int {
                let destination: Int
                switch target {
                case .next: destination = pc + 1
                case .filter: destination = instructions.count
                case .label(let label):
                    guard let p = positions[label] else { throw SeccompError(.system, "linux.seccomp: ENOSYS stub: unplaced label") }
                    destination = p
                }
                return destination - (pc + 1)
            }
            var bytes: [UInt8] = []
            bytes.reserveCapacity(instructions.count * 8)
            for (pc, insn) in instructions.enumerated() {
                var k = insn.k
                var jt = 0, jf = 0
                if let always = insn.always {
                    k = UInt32(try offset(always, from: pc))
                } else if insn.code & 0x07 == 0x05 {
                    jt = try offset(insn.jt, from: pc)
                    jf = try offset(insn.jf, from: pc)
                    // Conditional jumps hold 8-bit offsets; the stub is a few dozen instructions.
                    guard jt <= 255, jf <= 255 else { throw SeccompError(.system, "linux.seccomp: ENOSYS stub too long") }
                }
                withUnsafeBytes(of: insn.code) { bytes += $0 }
                bytes.append(UInt8(jt))
                bytes.append(UInt8(jf))
                withUnsafeBytes(of: k) { bytes += $0 }
            }
            return bytes
        }
    }
}
