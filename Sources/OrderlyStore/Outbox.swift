import Foundation

/// One e-mail of the outbox (`orderly.outbox`), claimed by this server for a while.
public struct OutboxMessage: Sendable, Decodable, Equatable {
    public let id: Int64
    public let recipient: String
    public let subject: String
    public let body: String
    public let attempts: Int
}

extension OrderlyDatabase {
    /// Claims up to `limit` e-mails that are due, for `lease` seconds (`FOR UPDATE SKIP LOCKED`
    /// in `api.outbox_claim`: two servers never hold the same row; a crashed server's claim runs
    /// out and the row is tried again).
    public func claimOutbox(worker: String, lease: Int, limit: Int) async throws -> [OutboxMessage] {
        let rows = try await run(changes: true) {
            try $0.query("SELECT api.outbox_claim($1, now(), make_interval(secs => $2::int), $3::int)",
                         [worker, String(lease), String(limit)]).rows
        }
        return rows.compactMap { row in
            row.first.flatMap { $0 }.flatMap { try? JSONDecoder().decode(OutboxMessage.self, from: Data($0.utf8)) }
        }
    }

    /// Records how sending went: `error` nil is sent; otherwise the row is tried again after
    /// `backoff` seconds doubling each attempt, or given up after `maxAttempts` with the error kept.
    public func outboxResult(id: Int64, worker: String, error: String?, maxAttempts: Int, backoff: Int) async throws {
        _ = try await run(changes: true) {
            try $0.query("SELECT api.outbox_result($1::bigint, $2, now(), $3, $4::int, make_interval(secs => $5::int))",
                         [String(id), worker, error, String(maxAttempts), String(backoff)])
        }
    }
}
