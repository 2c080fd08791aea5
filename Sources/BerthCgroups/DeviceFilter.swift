import BerthOCI

/// One eBPF instruction (`struct bpf_insn`, include/uapi/linux/bpf.h).
public struct BPFInstruction: Sendable, Equatable, CustomStringConvertible {
    public var opcode: UInt8
    public var dst: UInt8
    public var src: UInt8
    public var offset: Int16
    public var immediate: Int32

    public init(opcode: UInt8, dst: UInt8 = 0, src: UInt8 = 0, offset: Int16 = 0, immediate: Int32 = 0) {
        self.opcode = opcode; self.dst = dst; self.src = src; self.offset = offset; self.immediate = immediate
    }

    // Opcodes: class | operation | source (BPF_K immediate, BPF_X register).
    public static let loadWord: UInt8 = 0x61     // BPF_LDX | BPF_MEM | BPF_W
    public static let and32Imm: UInt8 = 0x54     // BPF_ALU | BPF_AND | BPF_K
    public static let rsh32Imm: UInt8 = 0x74     // BPF_ALU | BPF_RSH | BPF_K
    public static let mov32Imm: UInt8 = 0xb4     // BPF_ALU | BPF_MOV | BPF_K
    public static let mov32Reg: UInt8 = 0xbc     // BPF_ALU | BPF_MOV | BPF_X
    public static let jeqImm: UInt8 = 0x15       // BPF_JMP | BPF_JEQ | BPF_K
    public static let jneImm: UInt8 = 0x55       // BPF_JMP | BPF_JNE | BPF_K
    public static let jneReg: UInt8 = 0x5d       // BPF_JMP | BPF_JNE | BPF_X
    public static let exit: UInt8 = 0x95         // BPF_JMP | BPF_EXIT

    /// The 8 bytes the kernel reads, little-endian (`dst_reg` in the low nibble of byte 1).
    public var bytes: [UInt8] {
        let off = UInt16(bitPattern: offset)
        let imm = UInt32(bitPattern: immediate)
        return [opcode, (src << 4) | (dst & 0x0f), UInt8(off & 0xff), UInt8(off >> 8),
                UInt8(imm & 0xff), UInt8((imm >> 8) & 0xff), UInt8((imm >> 16) & 0xff), UInt8(imm >> 24)]
    }

    public var description: String {
        switch opcode {
        case Self.loadWord: return "r\(dst) = *(u32 *)(r\(src) + \(offset))"
        case Self.and32Imm: return "w\(dst) &= \(immediate)"
        case Self.rsh32Imm: return "w\(dst) >>= \(immediate)"
        case Self.mov32Imm: return "w\(dst) = \(immediate)"
        case Self.mov32Reg: return "w\(dst) = w\(src)"
        case Self.jeqImm: return "if r\(dst) == \(immediate) goto +\(offset)"
        case Self.jneImm: return "if r\(dst) != \(immediate) goto +\(offset)"
        case Self.jneReg: return "if r\(dst) != r\(src) goto +\(offset)"
        case Self.exit: return "exit"
        default: return "op 0x\(String(opcode, radix: 16)) r\(dst) r\(src) \(offset) \(immediate)"
        }
    }
}

/// Compiles OCI device rules into a BPF_PROG_TYPE_CGROUP_DEVICE program, cgroup v2's
/// replacement for the v1 devices controller (same scheme as runc's devicefilter).
///
/// The program reads `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
/// (access_type = type | access << 16) into r2 (type), r3 (access), r4 (major), r5 (minor),
/// then tests the rules from last to first, so the last matching rule wins as config-linux.md
/// asks; with no match it returns the default, deny unless a match-everything rule
/// (type `a`, no major/minor, `rwm`) set another. An allow rule matches when the requested
/// access is a subset of its own; a deny rule when the request asks for any of its access.
/// Unlike the v1 kernel list, separate allow rules for one device are not merged: allowing
/// `r` and then `w` on 1:3 does not allow opening it `rw`; give `rw` in one rule.
public enum DeviceFilter {
    /// The license passed to BPF_PROG_LOAD (the kernel's MODULE_LICENSE strings).
    public static let license = "Apache"

    // BPF_DEVCG_DEV_* and BPF_DEVCG_ACC_* from include/uapi/linux/bpf.h.
    static let accessMknod: UInt32 = 1
    static let accessRead: UInt32 = 2
    static let accessWrite: UInt32 = 4
    static let accessAll: UInt32 = 7

    public enum DeviceType: Int32, Sendable {
        case block = 1
        case char = 2
    }

    /// One validated OCI rule.
    public struct Rule: Sendable, Equatable {
        public var allow: Bool
        /// nil for `a` (any type).
        public var type: DeviceType?
        /// nil for any number.
        public var major: Int32?
        public var minor: Int32?
        /// BPF_DEVCG_ACC_* bits.
        public var access: UInt32

        public init(_ rule: Resources.DeviceCgroup) throws(CgroupError) {
            allow = rule.allow
            switch rule.type ?? "a" {
            case "a", "": type = nil
            case "c", "u": type = .char
            case "b": type = .block
            case let other:
                throw CgroupError(.invalidArgument, "device rule type \"\(other)\" is not one of a, b, c")
            }
            major = try Self.number(rule.major, "major")
            minor = try Self.number(rule.minor, "minor")
            let accessText = rule.access ?? "rwm"
            var bits: UInt32 = 0
            for character in accessText {
                switch character {
                case "r": bits |= DeviceFilter.accessRead
                case "w": bits |= DeviceFilter.accessWrite
                case "m": bits |= DeviceFilter.accessMknod
                default:
                    throw CgroupError(.invalidArgument, "device rule access \"\(accessText)\" has \"\(character)\"; only r, w and m are allowed")
                }
            }
            access = bits == 0 ? DeviceFilter.accessAll : bits
        }

        private static func number(_ value: Int64?, _ name: String) throws(CgroupError) -> Int32? {
            guard let value, value != -1 else { return nil }
            guard value >= 0, value <= Int64(Int32.max) else {
                throw CgroupError(.invalidArgument, "device rule \(name) \(value) is out of range")
            }
            return Int32(value)
        }

        /// Type `a`, any major and minor, all access: decides every request by itself.
        public var matchesEverything: Bool {
            type == nil && major == nil && minor == nil && access == DeviceFilter.accessAll
        }

        /// `rwm` order, as the v1 files print it.
        public var accessString: String {
            var text = ""
            if access & DeviceFilter.accessRead != 0 { text += "r" }
            if access & DeviceFilter.accessWrite != 0 { text += "w" }
            if access & DeviceFilter.accessMknod != 0 { text += "m" }
            return text
        }
    }

    /// The program for `rules`, in order; an empty list denies every device.
    public static func program(for rules: [Resources.DeviceCgroup]) throws(CgroupError) -> [BPFInstruction] {
        var parsed: [Rule] = []
        for rule in rules { parsed.append(try Rule(rule)) }

        // A match-everything rule overrides all rules before it and becomes the default.
        var defaultAllow = false
        var relevant = parsed[...]
        if let last = parsed.lastIndex(where: { $0.matchesEverything }) {
            defaultAllow = parsed[last].allow
            relevant = parsed[(last + 1)...]
        }
        // Leading rules that agree with the default change nothing: if one is the last match,
        // its verdict is the default anyway.
        if let first = relevant.firstIndex(where: { $0.allow != defaultAllow }) {
            relevant = relevant[first...]
        } else {
            relevant = []
        }

        var program: [BPFInstruction] = [
            BPFInstruction(opcode: BPFInstruction.loadWord, dst: 2, src: 1, offset: 0),
            BPFInstruction(opcode: BPFInstruction.and32Imm, dst: 2, immediate: 0xffff),
            BPFInstruction(opcode: BPFInstruction.loadWord, dst: 3, src: 1, offset: 0),
            BPFInstruction(opcode: BPFInstruction.rsh32Imm, dst: 3, immediate: 16),
            BPFInstruction(opcode: BPFInstruction.loadWord, dst: 4, src: 1, offset: 4),
            BPFInstruction(opcode: BPFInstruction.loadWord, dst: 5, src: 1, offset: 8),
        ]
        for rule in relevant.reversed() {
            program += block(for: rule)
        }
        program += verdict(defaultAllow)
        return program
    }

    /// Tests for one rule; each failed test jumps past the block to the next rule.
    static func block(for rule: Rule) -> [BPFInstruction] {
        var tests: [BPFInstruction] = []
        if let type = rule.type {
            tests.append(BPFInstruction(opcode: BPFInstruction.jneImm, dst: 2, immediate: type.rawValue))
        }
        if rule.access != accessAll {
            tests.append(BPFInstruction(opcode: BPFInstruction.mov32Reg, dst: 1, src: 3))
            tests.append(BPFInstruction(opcode: BPFInstruction.and32Imm, dst: 1, immediate: Int32(rule.access)))
            if rule.allow {
                // Requested access must be within the rule's: (access & rule) == access.
                tests.append(BPFInstruction(opcode: BPFInstruction.jneReg, dst: 1, src: 3))
            } else {
                // Any requested access the rule denies: (access & rule) != 0.
                tests.append(BPFInstruction(opcode: BPFInstruction.jeqImm, dst: 1, immediate: 0))
            }
        }
        if let major = rule.major {
            tests.append(BPFInstruction(opcode: BPFInstruction.jneImm, dst: 4, immediate: major))
        }
        if let minor = rule.minor {
            tests.append(BPFInstruction(opcode: BPFInstruction.jneImm, dst: 5, immediate: minor))
        }
        var block = tests + verdict(rule.allow)
        for index in block.indices where block[index].isConditionalJump {
            block[index].offset = Int16(block.count - index - 1)
        }
        return block
    }

    static func verdict(_ allow: Bool) -> [BPFInstruction] {
        [BPFInstruction(opcode: BPFInstruction.mov32Imm, dst: 0, immediate: allow ? 1 : 0),
         BPFInstruction(opcode: BPFInstruction.exit)]
    }
}

extension BPFInstruction {
    var isConditionalJump: Bool {
        opcode == Self.jeqImm || opcode == Self.jneImm || opcode == Self.jneReg
    }
}
