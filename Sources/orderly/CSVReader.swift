/// Records of a CSV file (RFC 4180: commas, double quotes around a field that holds commas,
/// quotes or line breaks, "" for a quote inside one; CRLF or LF), each with the line it starts on,
/// so that an import can say "line 12" about the line a spreadsheet shows. A hand-written reader
/// rather than a package: the line numbers are the point, and none of the CSV packages here give
/// them for records that span lines.
struct CSVRecord: Equatable {
    let line: Int
    let fields: [String]
}

enum CSVReader {
    struct Malformed: Error, CustomStringConvertible {
        let line: Int
        var description: String { "line \(line): a quoted field is not closed" }
    }

    static func records(_ text: String) throws -> [CSVRecord] {
        var records: [CSVRecord] = []
        var fields: [String] = []
        var field = ""
        var line = 1, recordLine = 1
        var quoted = false, wasQuoted = false
        var chars = Array(text.unicodeScalars)[...]
        if chars.first == "\u{FEFF}" { chars = chars.dropFirst() }  // a byte-order mark from a spreadsheet
        var i = chars.startIndex
        func endRecord() {
            fields.append(field)
            // A blank line is no record.
            if !(fields.count == 1 && fields[0].isEmpty && !wasQuoted) {
                records.append(CSVRecord(line: recordLine, fields: fields))
            }
            fields = []
            field = ""
            wasQuoted = false
        }
        while i < chars.endIndex {
            let c = chars[i]
            if quoted {
                if c == "\"" {
                    if chars.index(after: i) < chars.endIndex, chars[chars.index(after: i)] == "\"" {
                        field.unicodeScalars.append("\"")
                        i = chars.index(after: i)
                    } else {
                        quoted = false
                    }
                } else {
                    if c == "\n" { line += 1 }
                    field.unicodeScalars.append(c)
                }
            } else if c == "\"" && field.isEmpty {
                quoted = true
                wasQuoted = true
            } else if c == "," {
                fields.append(field)
                field = ""
            } else if c == "\r" {
                // Part of a CRLF line end; a lone CR is dropped too.
            } else if c == "\n" {
                endRecord()
                line += 1
                recordLine = line
            } else {
                field.unicodeScalars.append(c)
            }
            i = chars.index(after: i)
        }
        if quoted { throw Malformed(line: recordLine) }
        if !field.isEmpty || !fields.isEmpty || wasQuoted { endRecord() }
        return records
    }
}
