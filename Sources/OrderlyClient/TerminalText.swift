/// Text from the server made safe to print on a terminal, and measured as a terminal shows it.
///
/// Server data is untrusted: a string containing ESC could move the cursor, change colours or
/// retitle the window, and a newline would break a table row. Control characters are therefore
/// shown as escapes (`\n`, `\t`, `\u001b`), never sent raw.
public enum TerminalText {
    public static func sanitize(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            guard isControl(scalar) else { out.append(scalar); continue }
            let escape: String
            switch scalar {
            case "\n": escape = "\\n"
            case "\r": escape = "\\r"
            case "\t": escape = "\\t"
            default:
                let hex = String(scalar.value, radix: 16)
                escape = "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
            }
            out.append(contentsOf: escape.unicodeScalars)
        }
        return String(out)
    }

    /// C0 controls, DEL and C1 controls (0x80–0x9F, which some terminals also obey).
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }

    /// The number of terminal columns `text` takes: 0 for combining marks, 2 for East Asian wide
    /// characters and most emoji, 1 otherwise. An approximation of wcwidth that does not depend
    /// on the process locale.
    public static func width(_ text: String) -> Int {
        var total = 0
        for scalar in text.unicodeScalars { total += width(scalar) }
        return total
    }

    static func width(_ scalar: Unicode.Scalar) -> Int {
        let value = scalar.value
        if value < 0x300 { return 1 }
        switch scalar.properties.generalCategory {
        case .nonspacingMark, .enclosingMark, .format: return 0
        default: break
        }
        if value == 0x200B { return 0 }
        let wide: [ClosedRange<UInt32>] = [
            0x1100...0x115F, 0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF, 0x4E00...0x9FFF,
            0xA000...0xA4CF, 0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F, 0xFF00...0xFF60,
            0xFFE0...0xFFE6, 0x1F300...0x1F64F, 0x1F900...0x1F9FF, 0x20000...0x3FFFD,
        ]
        return wide.contains { $0.contains(value) } ? 2 : 1
    }
}
