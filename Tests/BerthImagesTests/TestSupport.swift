import BerthOCI
import Foundation
import Glibc
import XCTest
@testable import BerthImages

/// A scratch directory under /tmp, removed (after unmounting anything left below it) when the
/// test ends, whatever the outcome.
final class Scratch {
    let path: String

    init() {
        var template = Array("/tmp/berth-images-test-XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        path = String(cString: p!)
    }

    func sub(_ name: String) -> String { path + "/" + name }

    func mkdir(_ name: String) -> String {
        let p = sub(name)
        try! FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }

    deinit {
        // Unmount whatever a failed test left mounted below us, deepest first.
        if let mounts = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8) {
            var targets: [String] = []
            for line in mounts.split(separator: "\n") {
                let fields = line.split(separator: " ")
                if fields.count > 1 && fields[1].hasPrefix(path + "/") { targets.append(String(fields[1])) }
            }
            targets.sort { $0.count > $1.count }
            for t in targets { umount2(t, Int32(MNT_DETACH)) }
        }
        try? Tree.removeAll(AT_FDCWD, Tree.cName(path))
    }
}

/// Builds a tar file with TarWriter.
func makeTar(_ path: String, compression: TarWriter.Compression = .none, _ body: (TarWriter) throws -> Void) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    precondition(fd >= 0)
    defer { close(fd) }
    let w = try TarWriter(fd: fd, compression: compression)
    try body(w)
    try w.finish()
}

func readFile(_ path: String) -> [UInt8]? { FileManager.default.contents(atPath: path).map { Array($0) } }

func lstatOf(_ path: String) -> stat? {
    var st = stat()
    return lstat(path, &st) == 0 ? st : nil
}

func exists(_ path: String) -> Bool { lstatOf(path) != nil }

/// Runs a program, returns its standard output; fails the test on a nonzero exit.
@discardableResult
func runTool(_ args: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    XCTAssertEqual(p.terminationStatus, 0, "\(args) failed", file: file, line: line)
    return String(decoding: data, as: UTF8.self)
}

var isRoot: Bool { geteuid() == 0 }

/// The repository's scripts/ directory, found from this file's path.
let scriptsDirectory: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path + "/scripts"
}()

func expectError(_ code: ImageError.Code, containing text: String? = nil, file: StaticString = #filePath, line: UInt = #line,
                 _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("expected an error (\(code))", file: file, line: line)
    } catch let e as ImageError {
        XCTAssertEqual(e.code, code, "\(e.message)", file: file, line: line)
        if let text { XCTAssertTrue(e.message.contains(text), "message \"\(e.message)\" lacks \"\(text)\"", file: file, line: line) }
    } catch {
        XCTFail("unexpected error type: \(error)", file: file, line: line)
    }
}
