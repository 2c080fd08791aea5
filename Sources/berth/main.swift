// berth: Berth's command line, a client of the Docker Engine API (berthd or dockerd alike).
import Glibc

var environment: [String: String] = [:]
var entry = environ
while let pointer = entry.pointee {
    let pair = String(cString: pointer)
    if let eq = pair.firstIndex(of: "=") { environment[String(pair[..<eq])] = String(pair[pair.index(after: eq)...]) }
    entry += 1
}
// Output to a closed pipe (`berth ps | head`) ends the command quietly, as docker's does.
signal(SIGPIPE, SIG_IGN)
exit(Commands.main(Array(CommandLine.arguments.dropFirst()), environment: environment))
