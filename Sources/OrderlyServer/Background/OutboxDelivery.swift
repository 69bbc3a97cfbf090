import Foundation
import Logging
import NIOCore
import OrderlyStore
import SMTPClient

/// Sends the customer e-mail of the outbox (`orderly.outbox`) over SMTP. Each pass claims a
/// batch (`api.outbox_claim`: `FOR UPDATE SKIP LOCKED` and a lease, so two servers never send
/// one row at the same time), sends each message on its own connection, and records the outcome
/// (`api.outbox_result`: sent, or retried later with backoff, or given up with its error).
/// Delivery is at least once: a server that dies between the relay's "250" and recording it
/// leaves the row to be sent again when its lease runs out; the Message-ID stays the same.
struct OutboxDelivery: Sendable {
    let sender: SMTPSender
    let policy: ServerConfiguration.OutboxPolicy
    let database: OrderlyDatabase
    let group: EventLoopGroup
    let logger: Logger
    /// Names this server in claims: host, process and a random part (several servers on one host).
    let worker = "\(ProcessInfo.processInfo.hostName)/\(ProcessInfo.processInfo.processIdentifier)/\(UInt32.random(in: 0 ... .max))"

    /// One pass; returns how many messages were sent.
    func pass() async throws -> Int {
        // Long enough to send the whole batch one by one, each within the SMTP timeout.
        let lease = (policy.batch + 1) * sender.settings.timeoutSeconds
        let messages = try await database.claimOutbox(worker: worker, lease: lease, limit: policy.batch)
        var sent = 0
        for message in messages {
            var failure: String?
            do {
                try await sender.send(
                    SMTPMessage(to: message.recipient, subject: message.subject, body: message.body,
                                messageID: "outbox-\(message.id)@\(sender.settings.heloName)"),
                    group: group)
                sent += 1
            } catch {
                failure = "\(error)"
                logger.warning("e-mail not sent; will retry", metadata: ["outbox": "\(message.id)", "attempt": "\(message.attempts)",
                                                                          "error": "\(error)"])
            }
            try await database.outboxResult(id: message.id, worker: worker, error: failure,
                                            maxAttempts: policy.maxAttempts, backoff: policy.backoffSeconds)
        }
        return sent
    }
}
