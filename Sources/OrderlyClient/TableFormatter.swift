/// Formats a reply's data lines as an aligned text table, as the `orderly` client prints them.
///
/// Columns are the union of the objects' keys in the order they were first seen. A cell shows a
/// string as its raw text, a number or boolean as written, null as nothing, and a nested array or
/// object as compact JSON. A data line that is not a JSON object (or not JSON at all) goes into a
/// single column named `value`. All text is sanitized for the terminal.
///
/// ```
/// id  name   tags
/// --  -----  ---------
/// 1   Alice  ["a","b"]
/// 2   Bob
/// ```
public enum TableFormatter {
    /// The column used for data lines that are not objects.
    public static let valueColumn = "value"

    /// A horizontal bar chart beside the table: each row's `measure` (a number) as a bar of up to
    /// `width` blocks, scaled to the largest value (REPORT's main measure).
    public struct Bars: Sendable {
        public var measure: String
        public var width: Int
        public init(measure: String, width: Int = 30) {
            self.measure = measure
            self.width = width
        }
    }

    /// The table's lines, each ending in a newline; empty for no rows. With bars, a last column
    /// named after the measure's bar.
    public static func format(_ dataLines: [String], bars: Bars? = nil) -> String {
        guard !dataLines.isEmpty else { return "" }
        guard let bars else { return format(dataLines) }
        let values = dataLines.map { line -> Double? in
            guard let value = JSONValue(parsing: line), case .object(let members) = value,
                  let member = members.first(where: { $0.key == bars.measure }), case .number(let text) = member.value else { return nil }
            return Double(text)
        }
        let largest = values.compactMap { $0 }.map(abs).max() ?? 0
        let withBars = zip(dataLines, values).map { line, value -> String in
            guard let object = JSONValue(parsing: line), case .object(var members) = object else { return line }
            let blocks = largest > 0 ? Int((abs(value ?? 0) / largest * Double(bars.width)).rounded()) : 0
            members.append((key: bars.measure + " chart", value: .string(String(repeating: "█", count: blocks))))
            return JSONValue.object(members).compactText
        }
        return format(withBars)
    }

    /// The table's lines, each ending in a newline; empty for no rows.
    public static func format(_ dataLines: [String]) -> String {
        guard !dataLines.isEmpty else { return "" }
        var columns: [String] = []
        var columnIndex: [String: Int] = [:]
        func column(_ name: String) -> Int {
            if let index = columnIndex[name] { return index }
            columns.append(name)
            columnIndex[name] = columns.count - 1
            return columns.count - 1
        }
        // First pass: the cells of each row by column number, and the columns in first-seen order.
        var rows: [[Int: String]] = []
        for line in dataLines {
            var cells: [Int: String] = [:]
            if let value = JSONValue(parsing: line), case .object(let members) = value {
                for member in members { cells[column(member.key)] = cell(member.value) }
            } else {
                cells[column(valueColumn)] = JSONValue(parsing: line).map(cell) ?? line
            }
            rows.append(cells)
        }
        let headers = columns.map(TerminalText.sanitize)
        let table = rows.map { cells in columns.indices.map { TerminalText.sanitize(cells[$0] ?? "") } }
        var widths = headers.map(TerminalText.width)
        for row in table {
            for (index, text) in row.enumerated() { widths[index] = max(widths[index], TerminalText.width(text)) }
        }
        var out = ""
        func emit(_ cells: [String]) {
            // No padding after the last non-empty cell: lines carry no trailing blanks.
            let last = cells.lastIndex { !$0.isEmpty } ?? 0
            var line = ""
            for (index, text) in cells[...last].enumerated() {
                if index > 0 { line += "  " }
                line += text
                if index < last { line += String(repeating: " ", count: widths[index] - TerminalText.width(text)) }
            }
            out += line + "\n"
        }
        emit(headers)
        emit(widths.map { String(repeating: "-", count: $0) })
        table.forEach(emit)
        return out
    }

    /// One cell's text (not yet sanitized).
    static func cell(_ value: JSONValue) -> String {
        switch value {
        case .null: return ""
        case .bool(let flag): return flag ? "true" : "false"
        case .number(let text): return text
        case .string(let text): return text
        case .array, .object: return value.compactText
        }
    }
}
