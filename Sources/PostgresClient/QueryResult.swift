/// The rows of one statement, as text (libpq text format). A `json` column's text is exactly what
/// PostgreSQL sent, so callers can hand it on without decoding and re-encoding it.
public struct QueryResult: Sendable {
    public let columns: [String]
    public let rows: [[String?]]
    /// PostgreSQL's command tag, e.g. `SELECT 3` or `INSERT 0 1`.
    public let commandTag: String
    public init(columns: [String], rows: [[String?]], commandTag: String) {
        self.columns = columns
        self.rows = rows
        self.commandTag = commandTag
    }

    public var count: Int { rows.count }

    /// The value of `column` in row `row`; nil for SQL NULL or an unknown column.
    public func value(_ row: Int, _ column: String) -> String? {
        guard let index = columns.firstIndex(of: column) else { return nil }
        return rows[row][index]
    }

    /// The first column of the first row: for `SELECT f(...)` style statements.
    public var scalar: String? { rows.first?.first ?? nil }
}
