import BerthClient
import BerthOS
import Glibc

/// `berth registry ...` runs `berth-registry` from beside this binary, so the CLI itself
/// links no server code.
enum RegistryCommand {
    static func exec(_ arguments: [String]) -> Int32 {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, Int(PATH_MAX))
        let me = n > 0 ? String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
        let path = String(me[..<(me.lastIndex(of: "/") ?? me.startIndex)]) + "/berth-registry"
        let argv = CStringArray(["berth-registry"] + arguments)
        execv(path, argv.pointer)
        writeAll(2, "berth: cannot run \(path): \(String(cString: strerror(errno)))\n")
        return 127
    }
}
