import OrderlyProtocol

/// A parsed JSON value (read by the protocol's `JSONScanner`) that keeps what a table needs and Foundation's JSONSerialization loses:
/// the order of object keys, and numbers exactly as the server wrote them (`12.50` stays
/// `12.50`, a 20-digit id stays exact).
public indirect enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// The number's source text.
    case number(String)
    case string(String)
    case array([JSONValue])
    /// Members in source order. Duplicate keys are kept as given.
    case object([(key: String, value: JSONValue)])

    /// Nesting deeper than this is refused rather than risking the stack on hostile input.
    public static let maxDepth = 256

    /// Parses one JSON value (surrounding whitespace allowed); nil if `text` is not valid JSON.
    public init?(parsing text: String) {
        let scanner = JSONScanner(bytes: Array(text.utf8), maxDepth: JSONValue.maxDepth, rules: .document)
        guard let (value, end) = try? scanner.scan(from: 0, building: JSONTreeBuilder()),
              scanner.skipSpace(end) == scanner.bytes.count else { return nil }
        self = value
    }

    /// Compact JSON text: no spaces, strings escaped as needed.
    public var compactText: String {
        switch self {
        case .null: return "null"
        case .bool(let value): return value ? "true" : "false"
        case .number(let text): return text
        case .string(let text): return JSONText.quote(text)
        case .array(let items): return "[" + items.map(\.compactText).joined(separator: ",") + "]"
        case .object(let members):
            return "{" + members.map { JSONText.quote($0.key) + ":" + $0.value.compactText }.joined(separator: ",") + "}"
        }
    }

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.number(let a), .number(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }
}

/// Builds `JSONValue`s as the protocol's one JSON scanner reads a document.
private struct JSONTreeBuilder: JSONBuilder {
    func null() -> JSONValue { .null }
    func bool(_ value: Bool) -> JSONValue { .bool(value) }
    func number(_ text: ArraySlice<UInt8>) -> JSONValue { .number(String(decoding: text, as: UTF8.self)) }
    func string(_ scanner: JSONScanner, from start: Int, to end: Int) -> JSONValue {
        .string(scanner.decodeString(from: start, to: end))
    }
    func beginArray() -> [JSONValue] { [] }
    func append(_ value: JSONValue, to array: inout [JSONValue]) { array.append(value) }
    func endArray(_ array: [JSONValue]) -> JSONValue { .array(array) }
    func beginObject() -> [(key: String, value: JSONValue)] { [] }
    func add(key scanner: JSONScanner, from keyStart: Int, to keyEnd: Int, value: JSONValue,
             to object: inout [(key: String, value: JSONValue)]) {
        object.append((scanner.decodeString(from: keyStart, to: keyEnd), value))
    }
    func endObject(_ object: [(key: String, value: JSONValue)]) -> JSONValue { .object(object) }
}
