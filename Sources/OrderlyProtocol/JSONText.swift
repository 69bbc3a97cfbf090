/// Small helpers for writing JSON text by hand where a whole encoder would be overkill.
public enum JSONText {
    /// `text` as a JSON string literal.
    public static func quote(_ text: String) -> String {
        var out = "\""
        out.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// `json` without the whitespace between its tokens: PostgreSQL writes `{"a" : 1}` for json
    /// and `{"a": 1}` for jsonb. Whitespace inside strings stays. Valid JSON has no raw line break
    /// inside a string; should one arrive anyway it becomes a space, so a value is always one line.
    public static func compact(_ json: String) -> String {
        var json = json
        let compacted: String? = json.withUTF8 { bytes in
            guard bytes.contains(where: isWhitespace) else { return nil }
            return String(unsafeUninitializedCapacity: bytes.count) { compact(bytes, into: $0) }
        }
        return compacted ?? json
    }

    /// `compact(_:)` over bytes: writes the compacted text of `json` into `out` (room for
    /// `json.count` bytes; it never needs more) and returns how many bytes it wrote. Every reply's
    /// data passes through here: one pass over contiguous bytes, no per-byte appends.
    public static func compact(_ json: UnsafeBufferPointer<UInt8>, into out: UnsafeMutableBufferPointer<UInt8>) -> Int {
        precondition(out.count >= json.count, "compact needs as much room as its input")
        var count = 0
        var inString = false, escaped = false
        for byte in json {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                out[count] = byte == 0x0A || byte == 0x0D ? 0x20 : byte
                count += 1
            } else if !isWhitespace(byte) {
                if byte == UInt8(ascii: "\"") { inString = true }
                out[count] = byte
                count += 1
            }
        }
        return count
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 }

    /// Whether `text` is exactly one JSON number.
    public static func isNumber(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, first == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
        return (try? JSONScanner(bytes: bytes, maxDepth: 1).scanNumber(from: 0)) == bytes.count
    }
}
