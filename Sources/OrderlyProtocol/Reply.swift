/// Encodes server lines. Every line is one kind (first byte) and ends with `\n`; nothing a
/// function returns or an error says can break a line in two.
public enum Reply {
    /// `#…` information, e.g. the greeting. Clients may ignore it.
    public static func info(_ text: String) -> String { "#" + singleLine(text) + "\n" }

    /// `*…` one data line: a JSON value, compacted (see `JSONText.compact`), so that it is on one
    /// line and looks the same whichever PostgreSQL type (json or jsonb) produced it.
    public static func data(_ json: String) -> String { "*" + JSONText.compact(json) + "\n" }

    /// `data(_:)` appended to `out` from the bytes of a JSON value (nil: SQL NULL, `null`), e.g.
    /// as libpq holds a row: the replies to commands are built this way, without a String.
    public static func appendData(_ json: UnsafeBufferPointer<UInt8>?, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "*"))
        if let json {
            let start = out.count
            out.append(contentsOf: repeatElement(0, count: json.count))
            let written = out.withUnsafeMutableBufferPointer { all in
                JSONText.compact(json, into: UnsafeMutableBufferPointer(rebasing: all[start...]))
            }
            out.removeLast(json.count - written)
        } else {
            out.append(contentsOf: "null".utf8)
        }
        out.append(UInt8(ascii: "\n"))
    }

    /// `+OK [summary]`: the reply succeeded.
    public static func ok(_ summary: String? = nil) -> String {
        guard let summary, !summary.isEmpty else { return "+OK\n" }
        return "+OK " + singleLine(summary) + "\n"
    }

    /// `+WORD`: a success line other than OK (`+PONG`).
    public static func success(_ word: String) -> String { "+" + singleLine(word) + "\n" }

    /// `-CODE message`: the reply failed.
    public static func error(_ code: ErrorCode, _ message: String) -> String {
        "-" + code.rawValue + " " + singleLine(message) + "\n"
    }

    public static func error(_ error: ProtocolError) -> String { Self.error(error.code, error.message) }

    /// `>kind {json}`: a pushed event, written only between replies.
    public static func event(kind: String, json: String) -> String {
        ">" + singleLine(kind) + " " + String(data(json).dropFirst())
    }

    /// Control characters become spaces and very long text is cut, so that a message can never
    /// forge a second line or flood the client.
    static func singleLine(_ text: String, limit: Int = 2000) -> String {
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars.prefix(limit) {
            out.append(scalar.value < 0x20 || scalar.value == 0x7F ? " " : scalar)
        }
        return String(out)
    }
}
