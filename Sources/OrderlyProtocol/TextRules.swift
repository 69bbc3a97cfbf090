/// Characters a request may not carry, raw or as a JSON `\u` escape: what it stores is later shown
/// on terminals, in mail, in CSV exports and in BI tools, where a control character can move the
/// cursor or hide text (ESC, CSI U+009B), and a bidirectional override can make text read
/// differently from what it is (U+202E turns "exe.txt" into "txt.exe" on screen), nor U+2028/U+2029,
/// line breaks that one-line checks do not see. Line breaks
/// and tab stay allowed inside JSON strings (multi-line notes); the marks U+200E/U+200F, which
/// mixed-direction text needs, stay allowed too.
public enum TextRules {
    /// Why `scalar` is refused, or nil when it is allowed.
    public static func refusal(scalar: UInt32) -> String? {
        switch scalar {
        case 0x09, 0x0A, 0x0D: return nil
        case 0x00..<0x20, 0x7F...0x9F: return "control character"
        case 0x202A...0x202E, 0x2066...0x2069: return "bidirectional override (U+\(String(scalar, radix: 16, uppercase: true)))"
        // Unicode's line and paragraph separators: a line break that one-line checks (names,
        // e-mail addresses, "on one line") do not see, and many displays break at.
        case 0x2028, 0x2029: return "line separator (U+\(String(scalar, radix: 16, uppercase: true)))"
        default: return nil
        }
    }

    /// The same for the UTF-8 sequence starting at `bytes[i]` (valid UTF-8; only 2- and 3-byte
    /// sequences can encode a refused scalar above U+007F). Read in place: no copy per character.
    public static func refusal(utf8 bytes: [UInt8], at i: Int) -> String? {
        let lead = bytes[i]
        if lead == 0xC2, i + 1 < bytes.count { return refusal(scalar: UInt32(bytes[i + 1] & 0x3F) | 0x80) }
        if lead & 0xF0 == 0xE0, i + 2 < bytes.count {
            return refusal(scalar: (UInt32(lead & 0x0F) << 12) | (UInt32(bytes[i + 1] & 0x3F) << 6) | UInt32(bytes[i + 2] & 0x3F))
        }
        return nil
    }
}
