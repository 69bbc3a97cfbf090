/// The one error type of this module: a failure reported by PostgreSQL or by libpq.
///
/// `description` carries the SQLSTATE, the server's message and hint. It never includes the
/// statement's parameter values, and leaves out `detail` because PostgreSQL puts row values there
/// (e.g. "Key (email)=(…) already exists"), which must not end up in logs by accident.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// Could not connect, or the connection broke; the statement's fate is unknown.
        case connection
        /// The server answered the statement with an error.
        case query
        /// The pool is shut down.
        case poolClosed
        /// No pooled connection became free within the pool's wait limit.
        case poolTimeout
    }

    public var kind: Kind
    /// Five-character SQLSTATE, when the server sent one.
    public var sqlState: String?
    /// The server's message, verbatim (it may quote a value the statement was given).
    public var message: String
    public var detail: String?
    public var hint: String?
    /// The connection broke (or the server ended it) after the statement was sent and before its
    /// result came back: it may have run and committed, or not. False when it was never sent,
    /// or PostgreSQL answered it with an error of the statement's own (which did not commit).
    public var outcomeUnknown = false
    /// `message` and `hint` with the statement's parameter values blanked out: what
    /// `description` shows.
    private var loggableMessage: String?
    private var loggableHint: String?

    public init(kind: Kind, sqlState: String? = nil, message: String, detail: String? = nil, hint: String? = nil) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.hint = hint
    }

    /// True when the connection itself failed (lost, refused, server shutting down): the caller
    /// may retry on a new connection.
    public var isConnectionFailure: Bool {
        if kind == .connection { return true }
        guard let sqlState else { return false }
        // 08: connection exception; 57P01-57P03: admin/crash shutdown, cannot connect now.
        return sqlState.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains(sqlState)
    }

    /// "cached plan must not change result type" or a vanished statement: the prepared
    /// statement no longer fits the schema.
    var invalidatesPreparedStatement: Bool {
        sqlState == "26000" || (sqlState == "0A000" && message.contains("cached plan"))
    }

    /// True for errors PostgreSQL asks the client to retry: serialization failure, deadlock.
    public var isRetryableTransactionFailure: Bool {
        sqlState == "40001" || sqlState == "40P01"
    }

    /// Blanks the statement's parameter values out of what `description` shows: PostgreSQL quotes
    /// a bad value in its message (`invalid input syntax for type integer: "…"`), and a value may
    /// be a password. Values shorter than three characters are blanked only where quoted, so that
    /// a parameter "1" does not garble every digit of the message.
    mutating func redact(_ parameters: [String?]) {
        func blanked(_ original: String) -> String {
            var text = original
            for value in parameters.compactMap({ $0 }) where !value.isEmpty {
                text = text.replacing("\"" + value + "\"", with: "\"…\"")
                if value.count >= 3 { text = text.replacing(value, with: "…") }
            }
            return text
        }
        loggableMessage = blanked(loggableMessage ?? message)
        loggableHint = (loggableHint ?? hint).map(blanked)
    }

    public var description: String {
        var text = "PostgresError(\(kind)"
        if let sqlState { text += ", \(sqlState)" }
        text += "): \(loggableMessage ?? message)"
        if let hint = loggableHint ?? hint { text += " (hint: \(hint))" }
        return text
    }
}

