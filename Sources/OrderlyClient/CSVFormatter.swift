/// Formats a reply's data lines as CSV (RFC 4180), as `orderly --csv` prints them for spreadsheets
/// and other tools: a header of the objects' keys in the order first seen, one record per data
/// line, cells as `TableFormatter` shows them (nested values as compact JSON), quoted when they
/// hold a comma, a quote or a line break. Text is not sanitized: a file keeps what the server sent.
public enum CSVFormatter {
    public static func format(_ dataLines: [String]) -> String {
        guard !dataLines.isEmpty else { return "" }
        var columns: [String] = []
        var rows: [[String: String]] = []
        for line in dataLines {
            var cells: [String: String] = [:]
            if let value = JSONValue(parsing: line), case .object(let members) = value {
                for member in members {
                    if !columns.contains(member.key) { columns.append(member.key) }
                    cells[member.key] = TableFormatter.cell(member.value)
                }
            } else {
                if !columns.contains(TableFormatter.valueColumn) { columns.append(TableFormatter.valueColumn) }
                cells[TableFormatter.valueColumn] = JSONValue(parsing: line).map(TableFormatter.cell) ?? line
            }
            rows.append(cells)
        }
        var out = columns.map(field).joined(separator: ",") + "\r\n"
        for row in rows { out += columns.map { field(row[$0] ?? "") }.joined(separator: ",") + "\r\n" }
        return out
    }

    static func field(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\""
    }
}
