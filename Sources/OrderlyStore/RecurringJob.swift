import Logging

/// Work that orderlyd does on a timer beside the sessions: approval reminders, delay checks, the
/// e-mail outbox. Each pass is one SQL function (or a few) that is safe to run on several
/// orderlyd instances at once (an advisory lock or `SKIP LOCKED` decides who does what), so every
/// instance may run every job.
public struct RecurringJob: Sendable {
    private let name: String
    private let seconds: Int
    private let pass: @Sendable () async throws -> Int
    private let logger: Logger

    /// - Parameter seconds: how often to run; 0 turns the job off (pg_cron users, or no SMTP).
    /// - Parameter pass: one pass; returns how many things it did (logged when more than none).
    public init(_ name: String, every seconds: Int, logger: Logger, pass: @escaping @Sendable () async throws -> Int) {
        self.name = name
        self.seconds = seconds
        self.pass = pass
        self.logger = logger
    }

    /// Runs a pass every `seconds` until the task is cancelled. A failed pass is logged and
    /// the next one tries again.
    public func run() async {
        guard seconds > 0 else { return }
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: .seconds(seconds))
            } catch {
                return
            }
            do {
                let done = try await pass()
                if done > 0 { logger.info("\(name): done", metadata: ["count": "\(done)"]) }
            } catch {
                logger.warning("\(name) failed; will try again", metadata: ["error": "\(error)"])
            }
        }
    }
}
