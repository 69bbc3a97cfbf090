/// Why a connection failed, in words a user can act on.
public enum ClientError: Error, CustomStringConvertible, Equatable {
    /// The server closed the connection.
    case closed
    /// The server sent a line longer than the client accepts.
    case lineTooLong(Int)
    /// The server did not greet in time.
    case timedOut
    /// TLS could not be set up (bad CA file, failed handshake, untrusted certificate).
    case tls(String)

    public var description: String {
        switch self {
        case .closed: return "the server closed the connection"
        case .lineTooLong(let limit): return "the server sent a line longer than \(limit) bytes"
        case .timedOut: return "the server did not greet in time (a TLS port needs a TLS client)"
        case .tls(let reason): return "TLS: \(reason)"
        }
    }
}
