import OrderlyProtocol

extension ErrorCode {
    /// The error code for an `OLxxx` SQLSTATE raised by an `api` function, if it is one
    /// (sql/R__010_helpers.sql raises them; docs/ARCHITECTURE.md §6).
    public init?(sqlState: String) {
        switch sqlState {
        case "OL400": self = .invalid
        case "OL401": self = .authFailed
        case "OL403": self = .forbidden
        case "OL404": self = .notFound
        case "OL409": self = .conflict
        case "OL429": self = .locked
        default: return nil
        }
    }
}
