/// One argument value as the client wrote it.
public enum Value: Equatable, Sendable {
    /// An unquoted word.
    case bare(String)
    /// A `"JSON string"`, unescaped.
    case string(String)
    /// A JSON object or array, as its validated source text.
    case json(String)

    /// The value as plain text: what `AUTH` and other built-in commands read.
    public var text: String {
        switch self {
        case .bare(let text), .string(let text), .json(let text): return text
        }
    }

    /// The value inside the JSON argument object sent to PostgreSQL. A bare word that is a JSON
    /// number, `true`, `false` or `null` keeps that type (`ORDER SHOW 1042` → `{"id":1042}`);
    /// any other bare word becomes a string. Quote a value to force a string (`code="007"`).
    public var jsonText: String {
        switch self {
        case .json(let text): return text
        case .string(let text): return JSONText.quote(text)
        case .bare(let text):
            if text == "true" || text == "false" || text == "null" || JSONText.isNumber(text) { return text }
            return JSONText.quote(text)
        }
    }
}

public enum Token: Equatable, Sendable {
    case positional(Value)
    case named(key: String, value: Value)
}

/// A tokenized request line: bare words, `"JSON strings"`, JSON objects/arrays, and
/// `key=value` pairs whose value is any of those.
public struct Request: Equatable, Sendable {
    public var tokens: [Token]

    public init(tokens: [Token]) { self.tokens = tokens }

    /// Parses one line (without its terminator). Rejects invalid UTF-8, control characters other
    /// than tab, line separators and bidirectional overrides (`TextRules`), unbalanced quotes,
    /// invalid JSON and a key given twice in a JSON object with `BAD_SYNTAX`.
    public init(parsing line: some Collection<UInt8>, limits: Limits = Limits()) throws(ProtocolError) {
        let bytes = Array(line)
        guard bytes.count <= limits.maxLineBytes else { throw ProtocolError(.lineTooLong, "request line longer than \(limits.maxLineBytes) bytes") }
        for byte in bytes where (byte < 0x20 && byte != UInt8(ascii: "\t")) || byte == 0x7F {
            throw ProtocolError(.badSyntax, byte == 0 ? "NUL byte in request" : "control character in request")
        }
        guard String(validating: bytes, as: UTF8.self) != nil else { throw ProtocolError(.badSyntax, "request is not valid UTF-8") }
        // Valid UTF-8 from here on, so a lead byte is followed by its continuation bytes.
        for i in bytes.indices where TextRules.mayRefuse(lead: bytes[i]) {
            if let refusal = TextRules.refusal(utf8: bytes, at: i) { throw ProtocolError(.badSyntax, "\(refusal) in request") }
        }
        tokens = try Tokenizer(bytes: bytes, scanner: JSONScanner(bytes: bytes, maxDepth: limits.maxJSONDepth)).tokens()
        guard !tokens.isEmpty else { throw ProtocolError(.badSyntax, "empty request") }
    }

    public init(parsing line: String, limits: Limits = Limits()) throws(ProtocolError) {
        try self.init(parsing: Array(line.utf8), limits: limits)
    }

    /// The leading bare words, upper-cased: the candidates for `VERB [NOUN]`.
    public var commandWords: [String] {
        var words: [String] = []
        for token in tokens {
            guard case .positional(.bare(let word)) = token else { break }
            words.append(Request.asciiUppercased(word))
        }
        return words
    }

    /// Command names are ASCII: a-z upper-cased and nothing else. Unicode's own upper-casing
    /// would make "ınbox" (a dotless i) INBOX, one command under many spellings.
    public static func asciiUppercased(_ word: String) -> String {
        String(decoding: word.utf8.map { (0x61...0x7A).contains($0) ? $0 - 0x20 : $0 }, as: UTF8.self)
    }

    /// The arguments after the first `wordCount` tokens (the command words), as one JSON object
    /// text: `key=value` pairs as given, positional values named by `positionalNames` in order.
    public func argumentObject(skipping wordCount: Int, positionalNames: [String]) throws(ProtocolError) -> String {
        var seen = Set<String>()
        var members: [String] = []
        var nextPositional = 0
        for token in tokens.dropFirst(wordCount) {
            let key: String, value: Value
            switch token {
            case .named(let k, let v):
                key = k; value = v
            case .positional(let v):
                guard nextPositional < positionalNames.count else {
                    let expected = positionalNames.isEmpty ? "none" : positionalNames.joined(separator: ", ")
                    throw ProtocolError(.badSyntax, "too many positional arguments (expected: \(expected)); use key=value")
                }
                key = positionalNames[nextPositional]; value = v
                nextPositional += 1
            }
            guard seen.insert(key).inserted else { throw ProtocolError(.badSyntax, "argument '\(key)' given twice") }
            members.append(JSONText.quote(key) + ":" + value.jsonText)
        }
        return "{" + members.joined(separator: ",") + "}"
    }

    /// The keys of the `key=value` arguments after the command words, in order.
    public func namedKeys(skipping wordCount: Int) -> [String] {
        tokens.dropFirst(wordCount).compactMap { token in
            if case .named(let key, _) = token { return key }
            return nil
        }
    }

    /// The values after the command words, positional ones only (for built-in commands).
    public func positionalValues(skipping wordCount: Int) -> [Value] {
        tokens.dropFirst(wordCount).compactMap { token in
            if case .positional(let value) = token { return value }
            return nil
        }
    }
}

private struct Tokenizer {
    let bytes: [UInt8]
    let scanner: JSONScanner

    func tokens() throws(ProtocolError) -> [Token] {
        var tokens: [Token] = []
        var i = 0
        while true {
            while i < bytes.count, isSpace(bytes[i]) { i += 1 }
            guard i < bytes.count else { return tokens }
            let (token, end) = try token(at: i)
            guard end == bytes.count || isSpace(bytes[end]) else { throw ProtocolError(.badSyntax, "a space must follow a quoted or JSON value") }
            tokens.append(token)
            i = end
        }
    }

    private func token(at start: Int) throws(ProtocolError) -> (Token, Int) {
        if let (value, end) = try jsonValue(at: start) { return (.positional(value), end) }
        var end = start
        while end < bytes.count, !isSpace(bytes[end]), bytes[end] != UInt8(ascii: "=") {
            if bytes[end] == UInt8(ascii: "\"") { throw ProtocolError(.badSyntax, "unexpected quote inside a word") }
            end += 1
        }
        guard end < bytes.count, bytes[end] == UInt8(ascii: "=") else {
            return (.positional(.bare(text(start, end))), end)
        }
        let key = text(start, end)
        guard isIdentifier(key) else { throw ProtocolError(.badSyntax, "invalid argument name '\(key.prefix(64))'") }
        let valueStart = end + 1
        if let (value, valueEnd) = try jsonValue(at: valueStart) { return (.named(key: key, value: value), valueEnd) }
        var valueEnd = valueStart
        while valueEnd < bytes.count, !isSpace(bytes[valueEnd]) {
            if bytes[valueEnd] == UInt8(ascii: "\"") { throw ProtocolError(.badSyntax, "unexpected quote inside a value") }
            valueEnd += 1
        }
        guard valueEnd > valueStart else { throw ProtocolError(.badSyntax, "value missing after '\(key)='; use \(key)=\"\" for an empty string") }
        return (.named(key: key, value: .bare(text(valueStart, valueEnd))), valueEnd)
    }

    /// A quoted string, object or array starting at `start`, if one does.
    private func jsonValue(at start: Int) throws(ProtocolError) -> (Value, Int)? {
        guard start < bytes.count else { return nil }
        switch bytes[start] {
        case UInt8(ascii: "\""):
            let end = try scanner.scanString(from: start)
            return (.string(scanner.decodeString(from: start, to: end)), end)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            let end = try scanner.scanValue(from: start)
            return (.json(text(start, end)), end)
        default:
            return nil
        }
    }

    private func text(_ start: Int, _ end: Int) -> String { String(decoding: bytes[start..<end], as: UTF8.self) }

    private func isSpace(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }

    private func isIdentifier(_ key: String) -> Bool {
        guard let first = key.utf8.first, key.utf8.count <= 64 else { return false }
        let letter = { (b: UInt8) in (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(b) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(b) || b == UInt8(ascii: "_") }
        return letter(first) && key.utf8.allSatisfy { letter($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
    }
}
