/// The fixed registry of error codes a reply may end with (`-CODE message`). Clients switch on
/// these; never add one without documenting it in the README.
public enum ErrorCode: String, CaseIterable, Sendable {
    case badSyntax = "BAD_SYNTAX"
    case unknownCommand = "UNKNOWN_COMMAND"
    case noAuth = "NOAUTH"
    case authFailed = "AUTH_FAILED"
    case forbidden = "FORBIDDEN"
    case notFound = "NOT_FOUND"
    case invalid = "INVALID"
    case conflict = "CONFLICT"
    case lineTooLong = "LINE_TOO_LONG"
    /// The reply would be larger than the server's reply limit; ask for less (a smaller `limit=`).
    case tooLarge = "TOO_LARGE"
    case busy = "BUSY"
    case locked = "LOCKED"
    case unavailable = "UNAVAILABLE"
    /// The connection to the database broke after a changing command was sent: it may or may not
    /// have taken effect. Not retryable as such: retry with the same `idempotency_key`, or look first.
    case inDoubt = "IN_DOUBT"
    case `internal` = "INTERNAL"

    /// Whether the same request may simply be sent again later. Only for codes that say nothing
    /// about the request itself: the server was overloaded or could not reach its database.
    public var isRetryable: Bool {
        switch self {
        case .busy, .unavailable: return true
        default: return false
        }
    }
}

/// A request that cannot be carried out, with the code and the one-line message for the client.
public struct ProtocolError: Error, Equatable, Sendable {
    public var code: ErrorCode
    public var message: String

    public init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }
}
