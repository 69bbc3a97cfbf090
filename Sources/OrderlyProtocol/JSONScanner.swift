/// What a scan builds as it goes. The request tokenizer builds nothing (`JSONValidation`): it
/// only needs to know where a valid value ends. The client builds a tree (`JSONValue`). One
/// scanner serves both, so server and client agree on what JSON is.
public protocol JSONBuilder {
    associatedtype Value
    associatedtype ArrayValues
    associatedtype ObjectMembers
    func null() -> Value
    func bool(_ value: Bool) -> Value
    /// A number as its source text (already checked).
    func number(_ text: ArraySlice<UInt8>) -> Value
    /// The string literal `scanner.bytes[start..<end]`, quotes included (already checked); see
    /// `JSONScanner.decodeString`.
    func string(_ scanner: JSONScanner, from start: Int, to end: Int) -> Value
    func beginArray() -> ArrayValues
    func append(_ value: Value, to array: inout ArrayValues)
    func endArray(_ array: ArrayValues) -> Value
    func beginObject() -> ObjectMembers
    /// A member whose key is the string literal `scanner.bytes[keyStart..<keyEnd]`.
    func add(key scanner: JSONScanner, from keyStart: Int, to keyEnd: Int, value: Value, to object: inout ObjectMembers)
    func endObject(_ object: ObjectMembers) -> Value
}

/// Builds nothing: for finding where a value ends.
public struct JSONValidation: JSONBuilder {
    public init() {}
    public func null() {}
    public func bool(_ value: Bool) {}
    public func number(_ text: ArraySlice<UInt8>) {}
    public func string(_ scanner: JSONScanner, from start: Int, to end: Int) {}
    public func beginArray() {}
    public func append(_ value: Void, to array: inout Void) {}
    public func endArray(_ array: Void) {}
    public func beginObject() {}
    public func add(key scanner: JSONScanner, from keyStart: Int, to keyEnd: Int, value: Void, to object: inout Void) {}
    public func endObject(_ object: Void) {}
}

/// A strict RFC 8259 scanner over the bytes of one request line or document. It finds where a
/// JSON value ends (values may contain spaces, so the tokenizer cannot split on them) and, for
/// requests, rejects anything PostgreSQL's jsonb would reject later, so that bad JSON is a
/// `BAD_SYNTAX` reply, never a database error.
public struct JSONScanner {
    public enum Rules: Sendable {
        /// A request line: blanks are spaces and tabs; `\u0000` and the other escapes `TextRules`
        /// refuses, unpaired surrogates, numbers beyond what `numeric` takes and a key given twice
        /// in an object are refused.
        case request
        /// A document from the server (the client's reading): any JSON white space; an unpaired
        /// surrogate reads as U+FFFD rather than failing the whole reply.
        case document
    }

    public let bytes: [UInt8]
    let maxDepth: Int
    let rules: Rules

    public init(bytes: [UInt8], maxDepth: Int, rules: Rules = .request) {
        self.bytes = bytes
        self.maxDepth = maxDepth
        self.rules = rules
    }

    /// Scans one JSON value starting at `start`; returns the index just past it.
    func scanValue(from start: Int, depth: Int = 0) throws(ProtocolError) -> Int {
        try scan(from: start, depth: depth, building: JSONValidation()).end
    }

    /// Scans one JSON value starting at `start` (blanks before it allowed), building it with
    /// `builder`; returns the value and the index just past it.
    public func scan<B: JSONBuilder>(from start: Int, depth: Int = 0, building builder: B) throws(ProtocolError) -> (value: B.Value, end: Int) {
        guard depth < maxDepth else { throw ProtocolError(.badSyntax, "JSON nested deeper than \(maxDepth) levels") }
        let i = skipSpace(start)
        guard i < bytes.count else { throw ProtocolError(.badSyntax, "JSON value expected") }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try scanObject(from: i, depth: depth, building: builder)
        case UInt8(ascii: "["): return try scanArray(from: i, depth: depth, building: builder)
        case UInt8(ascii: "\""):
            let end = try scanString(from: i)
            return (builder.string(self, from: i, to: end), end)
        case UInt8(ascii: "t"): return (builder.bool(true), try scanLiteral("true", from: i))
        case UInt8(ascii: "f"): return (builder.bool(false), try scanLiteral("false", from: i))
        case UInt8(ascii: "n"): return (builder.null(), try scanLiteral("null", from: i))
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            let end = try scanNumber(from: i)
            return (builder.number(bytes[i..<end]), end)
        default: throw ProtocolError(.badSyntax, "invalid JSON value")
        }
    }

    /// The index of the first byte at or after `start` that is not a blank.
    public func skipSpace(_ start: Int) -> Int {
        var i = start
        while i < bytes.count, isBlank(bytes[i]) { i += 1 }
        return i
    }

    private func isBlank(_ byte: UInt8) -> Bool {
        switch rules {
        case .request: return byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
        case .document: return byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
        }
    }

    /// Scans a JSON string starting at its opening quote; returns the index past the closing one.
    func scanString(from start: Int) throws(ProtocolError) -> Int {
        var i = start + 1
        while i < bytes.count {
            let byte = bytes[i]
            if byte == UInt8(ascii: "\"") { return i + 1 }
            if byte < 0x20 { throw ProtocolError(.badSyntax, "control character inside a JSON string") }
            if byte == UInt8(ascii: "\\") {
                i += 1
                guard i < bytes.count else { break }
                switch bytes[i] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    i += 1
                case UInt8(ascii: "b"), UInt8(ascii: "f"):
                    // Backspace and form feed: control characters, like their \u escapes.
                    if case .request = rules { throw ProtocolError(.badSyntax, "control character inside a JSON string") }
                    i += 1
                case UInt8(ascii: "u"):
                    let (unit, next) = try hexUnit(at: i + 1)
                    i = next
                    guard case .request = rules else { continue }
                    if unit == 0 { throw ProtocolError(.badSyntax, "\\u0000 is not allowed in JSON strings") }
                    if let refusal = TextRules.refusal(scalar: UInt32(unit)) {
                        throw ProtocolError(.badSyntax, "\(refusal) inside a JSON string")
                    }
                    if (0xDC00...0xDFFF).contains(unit) { throw ProtocolError(.badSyntax, "unpaired UTF-16 surrogate in JSON string") }
                    if (0xD800...0xDBFF).contains(unit) {
                        guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                            throw ProtocolError(.badSyntax, "unpaired UTF-16 surrogate in JSON string")
                        }
                        let (low, afterLow) = try hexUnit(at: i + 2)
                        guard (0xDC00...0xDFFF).contains(low) else { throw ProtocolError(.badSyntax, "unpaired UTF-16 surrogate in JSON string") }
                        let scalar = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
                        if let refusal = TextRules.refusal(scalar: scalar) {
                            throw ProtocolError(.badSyntax, "\(refusal) inside a JSON string")
                        }
                        i = afterLow
                    }
                default:
                    throw ProtocolError(.badSyntax, "invalid escape in JSON string")
                }
                continue
            }
            i += 1
        }
        throw ProtocolError(.badSyntax, "unterminated JSON string")
    }

    /// The text of the JSON string literal `bytes[start..<end]` (quotes included), unescaped.
    /// Only call it on a range `scanString` accepted.
    public func decodeString(from start: Int, to end: Int) -> String {
        var scalars = String.UnicodeScalarView()
        var raw: [UInt8] = []
        var i = start + 1
        func flushRaw() {
            if !raw.isEmpty {
                scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
                raw.removeAll(keepingCapacity: true)
            }
        }
        while i < end - 1 {
            let byte = bytes[i]
            guard byte == UInt8(ascii: "\\") else { raw.append(byte); i += 1; continue }
            flushRaw()
            let escape = bytes[i + 1]
            i += 2
            switch escape {
            case UInt8(ascii: "b"): scalars.append("\u{08}")
            case UInt8(ascii: "f"): scalars.append("\u{0C}")
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "u"):
                var value = UInt32((try? hexUnit(at: i))?.0 ?? 0xFFFD)
                i += 4
                if (0xD800...0xDBFF).contains(value), i + 1 < end - 1, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u"),
                   let low = (try? hexUnit(at: i + 2)).map({ UInt32($0.0) }), (0xDC00...0xDFFF).contains(low) {
                    value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
                    i += 6
                }
                // An unpaired surrogate (allowed in documents only) is no scalar: U+FFFD.
                scalars.append(Unicode.Scalar(value) ?? "\u{FFFD}")
            default: scalars.append(Unicode.Scalar(escape))
            }
        }
        flushRaw()
        return String(scalars)
    }

    // MARK: - Internals

    private func expect(_ byte: UInt8, at i: Int, _ what: String) throws(ProtocolError) {
        guard i < bytes.count, bytes[i] == byte else { throw ProtocolError(.badSyntax, "\(what) expected in JSON") }
    }

    private func scanObject<B: JSONBuilder>(from start: Int, depth: Int, building builder: B) throws(ProtocolError) -> (value: B.Value, end: Int) {
        var members = builder.beginObject()
        var i = skipSpace(start + 1)
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") { return (builder.endObject(members), i + 1) }
        // In a request, a key given twice is refused, as an argument given twice is: PostgreSQL's
        // jsonb would keep the last one silently (a lines=[{"sku":A,"sku":B}] ordering B). The
        // first few keys are compared in place (no allocation for the objects requests are made
        // of); past them, a hash set of code points keeps the cost linear in the number of keys
        // (a request is parsed before its sender has logged in).
        var few: [Range<Int>] = []
        var many = Set<[UInt8]>()
        while true {
            try expect(UInt8(ascii: "\""), at: i, "object key")
            let keyEnd = try scanString(from: i)
            if case .request = rules {
                let duplicate: Bool
                if few.count < Self.keysComparedInPlace {
                    duplicate = few.contains { sameKey($0, i..<keyEnd) }
                    few.append(i..<keyEnd)
                } else {
                    if many.isEmpty { for key in few { many.insert(codePoints(key)) } }
                    duplicate = !many.insert(codePoints(i..<keyEnd)).inserted
                }
                if duplicate {
                    throw ProtocolError(.badSyntax, "key \(JSONText.quote(String(decodeString(from: i, to: keyEnd).prefix(64)))) given twice in a JSON object")
                }
            }
            let colon = skipSpace(keyEnd)
            try expect(UInt8(ascii: ":"), at: colon, "':'")
            let (value, end) = try scan(from: colon + 1, depth: depth + 1, building: builder)
            builder.add(key: self, from: i, to: keyEnd, value: value, to: &members)
            i = skipSpace(end)
            guard i < bytes.count else { throw ProtocolError(.badSyntax, "unterminated JSON object") }
            if bytes[i] == UInt8(ascii: "}") { return (builder.endObject(members), i + 1) }
            try expect(UInt8(ascii: ","), at: i, "',' or '}'")
            i = skipSpace(i + 1)
        }
    }

    static let keysComparedInPlace = 8

    /// A key literal's code points as UTF-8 (quotes off, escapes decoded): what jsonb compares.
    private func codePoints(_ key: Range<Int>) -> [UInt8] {
        let inner = bytes[(key.lowerBound + 1)..<(key.upperBound - 1)]
        guard inner.contains(UInt8(ascii: "\\")) else { return Array(inner) }
        return Array(decodeString(from: key.lowerBound, to: key.upperBound).utf8)
    }

    /// Whether two key literals (quotes included) name the same key: their bytes when neither
    /// has an escape (no allocation), else their code points.
    private func sameKey(_ a: Range<Int>, _ b: Range<Int>) -> Bool {
        let escaped = bytes[a].contains(UInt8(ascii: "\\")) || bytes[b].contains(UInt8(ascii: "\\"))
        guard escaped else { return bytes[a].elementsEqual(bytes[b]) }
        return codePoints(a) == codePoints(b)
    }

    private func scanArray<B: JSONBuilder>(from start: Int, depth: Int, building builder: B) throws(ProtocolError) -> (value: B.Value, end: Int) {
        var values = builder.beginArray()
        var i = skipSpace(start + 1)
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") { return (builder.endArray(values), i + 1) }
        while true {
            let (value, end) = try scan(from: i, depth: depth + 1, building: builder)
            builder.append(value, to: &values)
            i = skipSpace(end)
            guard i < bytes.count else { throw ProtocolError(.badSyntax, "unterminated JSON array") }
            if bytes[i] == UInt8(ascii: "]") { return (builder.endArray(values), i + 1) }
            try expect(UInt8(ascii: ","), at: i, "',' or ']'")
            i += 1
        }
    }

    private func scanLiteral(_ literal: String, from start: Int) throws(ProtocolError) -> Int {
        let expected = Array(literal.utf8)
        guard start + expected.count <= bytes.count, Array(bytes[start..<start + expected.count]) == expected else {
            throw ProtocolError(.badSyntax, "invalid JSON literal")
        }
        return start + expected.count
    }

    /// Digits a number may have, and the largest exponent: far beyond any quantity or amount,
    /// and well inside what PostgreSQL's `numeric` (and so `jsonb`) accepts.
    static let maxNumberDigits = 1000
    static let maxExponent = 1000

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    func scanNumber(from start: Int) throws(ProtocolError) -> Int {
        var i = start
        func digits() -> Int {
            let from = i
            while i < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) { i += 1 }
            return i - from
        }
        var total = 0
        if i < bytes.count, bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard i < bytes.count else { throw ProtocolError(.badSyntax, "invalid JSON number") }
        if bytes[i] == UInt8(ascii: "0") {
            i += 1
            total = 1
        } else {
            total = digits()
            guard total > 0 else { throw ProtocolError(.badSyntax, "invalid JSON number") }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            let fraction = digits()
            guard fraction > 0 else { throw ProtocolError(.badSyntax, "invalid JSON number") }
            total += fraction
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            let from = i
            guard digits() > 0 else { throw ProtocolError(.badSyntax, "invalid JSON number") }
            let exponent = bytes[from..<i].drop { $0 == UInt8(ascii: "0") }
            guard case .request = rules else { return i }
            guard exponent.count <= 4, (Int(String(decoding: exponent, as: UTF8.self)) ?? 0) <= JSONScanner.maxExponent else {
                throw ProtocolError(.badSyntax, "JSON number out of range")
            }
        }
        guard total <= JSONScanner.maxNumberDigits || rules == .document else { throw ProtocolError(.badSyntax, "JSON number out of range") }
        return i
    }

    private func hexUnit(at start: Int) throws(ProtocolError) -> (UInt16, Int) {
        guard start + 4 <= bytes.count else { throw ProtocolError(.badSyntax, "invalid \\u escape in JSON string") }
        var value: UInt16 = 0
        for i in start..<start + 4 {
            let byte = bytes[i]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw ProtocolError(.badSyntax, "invalid \\u escape in JSON string")
            }
            value = value << 4 | UInt16(digit)
        }
        return (value, start + 4)
    }
}
