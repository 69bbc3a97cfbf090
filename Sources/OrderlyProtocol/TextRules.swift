/// Characters a request may not carry, raw or as a JSON `\u` escape: what it stores is later shown
/// on terminals, in mail, in CSV exports and in BI tools, where a control character can move the
/// cursor or hide text (ESC, CSI U+009B), and a bidirectional override can make text read
/// differently from what it is (U+202E turns "exe.txt" into "txt.exe" on screen), nor U+2028/U+2029,
/// line breaks that one-line checks do not see, nor the invisible characters that carry or hide
/// text a reader does not see: interlinear annotations (U+FFF9–U+FFFB: "gate 1" shown, "gate 9"
/// kept), the deprecated format characters U+206A–U+206F, the tag characters U+E0000–U+E007F
/// ("ASCII smuggling") and U+FEFF inside text. Line breaks and tab stay allowed inside JSON
/// strings (multi-line notes); the marks U+200E/U+200F, which mixed-direction text needs, and the
/// zero-width joiners and space that scripts and emoji need, stay allowed too. The same list is
/// orderly.hides_text in PostgreSQL, for what admins write in SQL.
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
        case 0xFFF9...0xFFFB, 0x206A...0x206F, 0xFEFF, 0xE0000...0xE007F:
            return "invisible character (U+\(String(scalar, radix: 16, uppercase: true)))"
        default: return nil
        }
    }

    /// The lead bytes of the UTF-8 sequences that can encode a refused scalar above U+007F
    /// (U+0080–U+009F; U+2028–U+206F; U+FEFF–U+FFFB; U+E0000–U+E007F): a request is checked only
    /// at these.
    public static func mayRefuse(lead: UInt8) -> Bool {
        lead == 0xC2 || lead == 0xE2 || lead == 0xEF || lead == 0xF3
    }

    /// The same for the UTF-8 sequence starting at `bytes[i]` (valid UTF-8). Read in place: no
    /// copy per character.
    public static func refusal(utf8 bytes: [UInt8], at i: Int) -> String? {
        let lead = bytes[i]
        if lead == 0xC2, i + 1 < bytes.count { return refusal(scalar: UInt32(bytes[i + 1] & 0x3F) | 0x80) }
        if lead & 0xF0 == 0xE0, i + 2 < bytes.count {
            return refusal(scalar: (UInt32(lead & 0x0F) << 12) | (UInt32(bytes[i + 1] & 0x3F) << 6) | UInt32(bytes[i + 2] & 0x3F))
        }
        if lead & 0xF8 == 0xF0, i + 3 < bytes.count {
            return refusal(scalar: (UInt32(lead & 0x07) << 18) | (UInt32(bytes[i + 1] & 0x3F) << 12)
                                   | (UInt32(bytes[i + 2] & 0x3F) << 6) | UInt32(bytes[i + 3] & 0x3F))
        }
        return nil
    }
}
