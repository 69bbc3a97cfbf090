import Logging

/// The timer that makes overdue approval steps send reminders and escalate. The work itself is
/// one SQL function under an advisory lock, so several orderlyd instances may all run this
/// timer without a reminder ever going out twice.
public struct ApprovalReminders: Sendable {
    private let seconds: Int
    private let database: OrderlyDatabase
    private let logger: Logger

    /// - Parameter seconds: how often to look; 0 turns the timer off (pg_cron users).
    public init(every seconds: Int, database: OrderlyDatabase, logger: Logger) {
        self.seconds = seconds
        self.database = database
        self.logger = logger
    }

    /// Looks every `seconds` until the task is cancelled.
    public func run() async {
        guard seconds > 0 else { return }
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: .seconds(seconds))
            } catch {
                return
            }
            do {
                let sent = try await database.runApprovalReminders()
                if sent > 0 { logger.info("approval reminders sent", metadata: ["count": "\(sent)"]) }
            } catch {
                logger.warning("approval reminders failed; will try again", metadata: ["error": "\(error)"])
            }
        }
    }
}
