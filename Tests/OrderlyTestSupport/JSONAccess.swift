import OrderlyClient

/// Reading replies in tests: `try doc(reply.data[0])["lines"][0]["net"].text == "2397.00"`.
/// Numbers keep the server's exact text, so money is compared digit for digit.
extension JSONValue {
    public subscript(key: String) -> JSONValue {
        if case .object(let members) = self, let member = members.first(where: { $0.key == key }) { return member.value }
        return .null
    }

    public subscript(index: Int) -> JSONValue {
        if case .array(let items) = self, items.indices.contains(index) { return items[index] }
        return .null
    }

    /// A string's value or a number's text; nil for anything else.
    public var text: String? {
        switch self {
        case .string(let value), .number(let value): return value
        default: return nil
        }
    }

    public var int: Int? { text.flatMap { Int($0) } }

    public var bool: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    public var items: [JSONValue] {
        if case .array(let items) = self { return items }
        return []
    }

    public var isNull: Bool { self == .null }
}

public struct NotJSON: Error, CustomStringConvertible {
    public let description: String
}

/// One data line of a reply, parsed.
public func doc(_ line: String) throws -> JSONValue {
    guard let value = JSONValue(parsing: line) else { throw NotJSON(description: "not JSON: \(line.prefix(200))") }
    return value
}
