import Foundation
import NIOConcurrencyHelpers
import Subprocess
import SystemPackage

/// The programs the tests run (orderly, orderly-bench, orderlyd, openssl, curl, haproxy, the SMTP
/// server), started through swift-subprocess. Not Foundation's `Process`: its `run()` reads the
/// entries of /proc/self/fd with a fixed-size copy that runs past glibc's buffer and crashed the
/// test process when it held many descriptors (swift-corelibs-foundation PR #5472, not in this
/// toolchain). Subprocess closes the child's descriptors with close_range and waits on a pidfd.
public enum Program {
    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// Runs `path arguments…` to its end with `stdin` as its input (a pipe, never the terminal),
    /// the test process's environment changed by `environment` (nil removes a variable), and
    /// returns what it printed. A program still running after `timeout` is killed and the call
    /// throws, so a hang fails the test instead of blocking the suite.
    public static func run(_ path: String, _ arguments: [String], environment: [String: String?] = [:], stdin: String = "",
                           timeout: Duration = .seconds(120)) async throws -> Result {
        try await withThrowingTaskGroup(of: Result?.self) { group in
            group.addTask {
                let result = try await Subprocess.run(
                    .path(FilePath(path)), arguments: Arguments(arguments), environment: changed(environment),
                    input: .string(stdin), output: .string(limit: outputLimit), error: .string(limit: outputLimit))
                return Result(status: status(result.terminationStatus), stdout: result.standardOutput,
                              stderr: result.standardError)
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            // Whichever ends first; cancelling the other kills the program if it is still running.
            let first = try await group.next() ?? nil
            group.cancelAll()
            guard let first else { throw ProgramError("\(path) \(arguments.joined(separator: " ")) still ran after \(timeout)") }
            return first
        }
    }

    /// Output beyond this fails the run (Subprocess never truncates silently).
    static let outputLimit = 64 << 20

    static func changed(_ environment: [String: String?]) -> Environment {
        .inherit.updating(Dictionary(uniqueKeysWithValues: environment.map { (Environment.Key(stringLiteral: $0.key), $0.value) }))
    }

    /// An exit code, or 128 + the signal that ended the program (as a shell reports it).
    static func status(_ termination: TerminationStatus) -> Int32 {
        switch termination {
        case .exited(let code): return code
        case .signaled(let signal): return 128 + signal
        }
    }
}

/// A program that runs beside a test (orderlyd, haproxy, an SMTP server) until it is stopped,
/// writing its output and errors to `log`.
public final class BackgroundProgram: Sendable {
    public let pid: pid_t
    public let log: String
    private let ending: Task<Int32, any Error>
    private let ended = NIOLockedValueBox<Int32?>(nil)

    /// Starts the program; it runs until it exits or `stop` is called. `log` is created.
    public init(_ path: String, _ arguments: [String], environment: [String: String?] = [:], log: String) async throws {
        let descriptor = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw ProgramError("cannot create \(log): \(String(cString: strerror(errno)))") }
        let ended = self.ended
        let started = NIOLockedValueBox<CheckedContinuation<pid_t, any Error>?>(nil)
        var task: Task<Int32, any Error>?
        self.pid = try await withCheckedThrowingContinuation { continuation in
            started.withLockedValue { $0 = continuation }
            task = Task {
                do {
                    let result = try await Subprocess.run(
                        .path(FilePath(path)), arguments: Arguments(arguments), environment: Program.changed(environment),
                        input: .none, output: .fileDescriptor(FileDescriptor(rawValue: descriptor), closeAfterSpawningProcess: true),
                        error: .combinedWithOutput
                    ) { execution in
                        started.withLockedValue { $0.take() }?.resume(returning: execution.processIdentifier.value)
                    }
                    // Recorded as soon as Subprocess has reaped it, and `signal` sends nothing from
                    // then on; only in the moment between could a signal reach a reused id, and
                    // only if the kernel had gone through every other id meanwhile.
                    let status = Program.status(result.terminationStatus)
                    ended.withLockedValue { $0 = status }
                    return status
                } catch {
                    ended.withLockedValue { $0 = -1 }
                    started.withLockedValue { $0.take() }?.resume(throwing: error)
                    throw error
                }
            }
        }
        self.log = log
        self.ending = task!
    }

    public var isRunning: Bool { ended.withLockedValue { $0 == nil } }

    /// What the program has written so far.
    public var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// Sends `signal` while the program runs (nothing once it has ended).
    public func signal(_ signal: Int32) {
        ended.withLockedValue { status in
            if status == nil { kill(pid, signal) }
        }
    }

    /// The exit status (128 + signal if a signal ended it), or nil if it still runs after `seconds`.
    public func exitStatus(within seconds: Double) async -> Int32? {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        return ended.withLockedValue { $0 }
    }

    /// Sends SIGTERM, then SIGKILL if it is still running after `seconds`, and waits for the end.
    @discardableResult
    public func stop(within seconds: Double = 10) async -> Int32? {
        signal(SIGTERM)
        if let status = await exitStatus(within: seconds) { return status }
        signal(SIGKILL)
        return try? await ending.value
    }
}

public struct ProgramError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
