import Foundation
import OrderlyTestSupport
import NIOConcurrencyHelpers

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
        let path = NSTemporaryDirectory() + "orderly-cli-tests-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    /// Runs `orderly arguments…` with `stdin` as its input (a pipe, never the terminal) and
    /// returns what it printed. Killed after `timeout` seconds, so a hang fails instead of
    /// blocking the suite.
    static func run(_ arguments: [String], stdin: String = "", environment: [String: String] = [:], timeout: Double = 30) async throws -> Result {
        try await onThread { try runBlocking(arguments, stdin: stdin, environment: environment, timeout: timeout) }
    }

    private static func runBlocking(_ arguments: [String], stdin: String, environment: [String: String], timeout: Double) throws -> Result {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["ORDERLY_PASSWORD"] = nil
        env["HOME"] = home
        env.merge(environment) { $1 }
        process.environment = env
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let killer = DispatchWorkItem { if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
        defer { killer.cancel() }
        input.fileHandleForWriting.write(Data(stdin.utf8))
        try input.fileHandleForWriting.close()
        // Read both pipes before waiting for the exit: a full pipe would block the child forever.
        let stderrData = NIOLockedValueBox(Data())
        let stderrDone = DispatchSemaphore(value: 0)
        Thread {
            let data = errors.fileHandleForReading.readDataToEndOfFile()
            stderrData.withLockedValue { $0 = data }
            stderrDone.signal()
        }.start()
        let stdoutData = output.fileHandleForReading.readDataToEndOfFile()
        stderrDone.wait()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: stdoutData, as: UTF8.self), stderr: String(decoding: stderrData.withLockedValue { $0 }, as: UTF8.self))
    }
}
