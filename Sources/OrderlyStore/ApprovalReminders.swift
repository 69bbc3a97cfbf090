import Logging

/// The timer that makes overdue approval steps send reminders and escalate. The work itself is
/// one SQL function under an advisory lock, so several orderlyd instances may all run this
/// timer without a reminder ever going out twice.
public final class ApprovalReminders: Sendable {
    private let task: Task<Void, Never>?

    public init(every seconds: Int, database: OrderlyDatabase, logger: Logger) {
        guard seconds > 0 else {
            task = nil
            return
        }
        task = Task {
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

    public func stop() async {
        task?.cancel()
        await task?.value
    }
}
