import Foundation
import OrderlyTestSupport

/// Runs the built `orderly` executable, as a user would.
enum CLI {
    struct Result: Sendable {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// `orderly` is built next to the test bundle (the test target depends on it).
    static var binary: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("orderly")
    }

    /// A home folder of its own, so that no test reads or writes the real ~/.orderly_history.
    static let home: String = {
        let path = TemporaryFiles.path("orderly-cli-tests")
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    /// Runs `orderly arguments…` with `stdin` as its input (a pipe, never the terminal) and
    /// returns what it printed. Killed after `timeout` seconds, so a hang fails instead of
    /// blocking the suite.
    static func run(_ arguments: [String], stdin: String = "", environment: [String: String] = [:], timeout: Double = 30) async throws -> Result {
        var changes: [String: String?] = ["ORDERLY_PASSWORD": nil, "HOME": home]
        for (name, value) in environment { changes[name] = value }
        let result = try await Program.run(binary.path, arguments, environment: changes, stdin: stdin, timeout: .milliseconds(Int(timeout * 1000)))
        return Result(status: result.status, stdout: result.stdout, stderr: result.stderr)
    }
}
