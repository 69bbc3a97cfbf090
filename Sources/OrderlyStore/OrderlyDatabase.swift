import Foundation
import Logging
import OrderlyProtocol
import PostgresClient

/// The server's only door to PostgreSQL: calls `api` functions through the pool and turns every
/// failure into a `ProtocolError` from the registry. SQL text and internal details never reach
/// a client; they go to the log.
public final class OrderlyDatabase: Sendable {
    public let pool: ConnectionPool
    private let logger: Logger
    /// Serialization failures and deadlocks are retried this many times before `BUSY`.
    private let transactionAttempts = 3
    private let loginGate = LoginGate()

    public init(pool: ConnectionPool, logger: Logger) {
        self.pool = pool
        self.logger = logger
    }

    /// The data lines of a command's reply, ready to send (`Reply.data` of each row), and how
    /// many rows they are.
    public struct DataLines: Sendable {
        public var bytes: [UInt8] = []
        public var count = 0
    }

    /// `SELECT * FROM <function>(actor, args)`; each row's JSON becomes one data line, written
    /// from libpq's bytes on the pool's thread (no String is made of a reply on its way through).
    /// - Parameter function: a name from the command table (checked by `RegisteredCommands`), never from a client.
    /// - Parameter changes: the command creates or changes something; if the connection breaks
    ///   after it was sent, the client is told `IN_DOUBT` rather than `UNAVAILABLE` (which
    ///   promises that nothing happened).
    /// - Parameter maxReplyBytes: the most bytes of JSON the rows may add up to; a longer reply
    ///   is never built in memory, and is refused (`TOO_LARGE`) instead.
    public func call(_ function: String, actor: Int64, arguments: String, changes: Bool = false,
                     maxReplyBytes: Int? = nil) async throws -> DataLines {
        let sql = "SELECT * FROM \(function)($1::bigint, $2::jsonb)"
        let (lines, cut) = try await run(changes: changes) { connection -> (DataLines, Bool) in
            var lines = DataLines()
            let (count, cut) = try connection.query(sql, [String(actor), arguments], maxBytes: maxReplyBytes ?? .max) {
                Reply.appendData($0, to: &lines.bytes)
            }
            lines.count = count
            return (lines, cut)
        }
        if cut, let maxReplyBytes {
            throw ProtocolError(.tooLarge, "the reply would be larger than \(maxReplyBytes) bytes; ask for less (e.g. a smaller limit=)")
        }
        return lines
    }

    /// Checks a password. Wrong password, unknown user and admin-locked account fail alike;
    /// `api.login` counts the failure in the same transaction, one login of a name at a time, so
    /// that AUTHs sent at once cannot all pass the wait before the first failure is counted. At
    /// most `policy.concurrentChecks(poolSize:)` checks run at once (bcrypt is slow on purpose):
    /// the others wait their turn up to `policy.waitSeconds`, then `BUSY`, so a flood of AUTHs
    /// leaves the rest of the pool to logged-in users.
    public func authenticate(username: String, password: String, clientAddress: String, policy: LoginPolicy) async throws -> Identity {
        guard await loginGate.enter(limit: policy.concurrentChecks(poolSize: pool.size), maxWait: .seconds(policy.waitSeconds)) else {
            throw ProtocolError(.busy, "too many logins at once; try again in a moment")
        }
        defer { Task { await loginGate.leave() } }
        let rules = policy.databaseJSON
        let result = try await run {
            try $0.query("SELECT api.login($1, $2, $3, $4::jsonb)", [username, password, clientAddress, rules])
        }
        if let json = result.scalar, let refusal = try? JSONDecoder().decode(LoginRefusal.self, from: Data(json.utf8)) {
            throw ProtocolError(.authFailed, refusal.message)
        }
        return try decodeIdentity(result.scalar)
    }

    /// What `api.login` answers for a wrong password (a refusal to check at all, LOCKED, is raised).
    private struct LoginRefusal: Decodable {
        let refused: String
        let message: String
    }

    /// Sends the reminders and escalations that are due (the function itself makes sure that of
    /// several servers only one does it at a time). Returns how many were sent.
    public func runApprovalReminders() async throws -> Int {
        try await run { try $0.query("SELECT count(*) FROM api.run_approval_reminders(now())") }.scalar.flatMap { Int($0) } ?? 0
    }

    /// Raises the delay warnings that are due and clears those whose reason went away (the
    /// function lets one server at a time do it). Returns how many it raised or cleared.
    public func runDelayChecks() async throws -> Int {
        try await run { try $0.query("SELECT count(*) FROM api.run_delay_checks(now())") }.scalar.flatMap { Int($0) } ?? 0
    }

    /// Brings the analytics rollups up to date with what changed since the last refresh (one
    /// server at a time; the others return at once). Returns how many orders it looked at.
    public func refreshAnalytics() async throws -> Int {
        try await run { try $0.query("SELECT (api.refresh_analytics(now()) ->> 'orders')::integer") }.scalar.flatMap { Int($0) } ?? 0
    }

    /// The registry's commands (`api.command_registry()`).
    public func registeredCommands() async throws -> [Command] {
        let rows = try await run { try $0.query(RegisteredCommands.query).rows.map { $0.first.flatMap { $0 } } }
        do {
            return try RegisteredCommands.commands(fromRows: rows)
        } catch {
            logger.error("the command registry cannot be read", metadata: ["error": "\(error)"])
            throw ProtocolError(.internal, "internal error")
        }
    }

    /// A user's current rights, read fresh.
    public func identity(userId: Int64) async throws -> Identity {
        try decodeIdentity(try await run { try $0.query("SELECT api.user_permissions($1::bigint)", [String(userId)]) }.scalar)
    }

    // MARK: - Internals

    private func decodeIdentity(_ json: String?) throws -> Identity {
        guard let json, let identity = try? JSONDecoder().decode(Identity.self, from: Data(json.utf8)) else {
            logger.error("api returned an identity the server cannot read")
            throw ProtocolError(.internal, "internal error")
        }
        return identity
    }

    /// Runs `body` on a pooled connection, retrying transaction conflicts, and maps errors.
    func run<T: Sendable>(changes: Bool = false, _ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        var attempt = 1
        while true {
            do {
                return try await pool.withConnection(body)
            } catch let error as PostgresError {
                if error.isRetryableTransactionFailure, attempt < transactionAttempts {
                    attempt += 1
                    continue
                }
                throw map(error, changes: changes)
            }
        }
    }

    private func map(_ error: PostgresError, changes: Bool) -> ProtocolError {
        if let sqlState = error.sqlState, let code = ErrorCode(sqlState: sqlState) {
            return ProtocolError(code, error.message)
        }
        if changes && error.outcomeUnknown {
            logger.warning("database connection lost while a change ran; its outcome is unknown", metadata: ["error": "\(error)"])
            return ProtocolError(.inDoubt, "the database connection was lost while this ran: it may or may not have taken effect; " +
                                 "send it again with the same idempotency_key, or look before retrying")
        }
        if error.isConnectionFailure || error.kind == .poolClosed {
            logger.warning("database unavailable", metadata: ["error": "\(error)"])
            return ProtocolError(.unavailable, "database unavailable; retry shortly")
        }
        // Transaction conflicts past the retries, lock and statement timeouts, a full pool.
        if error.isRetryableTransactionFailure || error.sqlState == "55P03" || error.sqlState == "57014" || error.kind == .poolTimeout {
            logger.notice("database busy", metadata: ["error": "\(error)"])
            return ProtocolError(.busy, "the database is busy; retry shortly")
        }
        // Class 22 (a value the database cannot take) means an argument no function validated.
        if error.sqlState?.hasPrefix("22") == true {
            logger.debug("value rejected by the database", metadata: ["error": "\(error)"])
            return ProtocolError(.invalid, "an argument has a value the database cannot accept")
        }
        logger.error("database error", metadata: ["error": "\(error)"])
        return ProtocolError(.internal, "internal error")
    }
}
