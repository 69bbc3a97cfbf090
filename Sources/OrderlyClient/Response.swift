/// Everything the server sent for one request: its data lines, the final line, and any pushed
/// events or info lines that arrived before the final line.
public struct Response: Sendable, Equatable {
    /// The JSON text of each `*` line, without the `*`.
    public var data: [String] = []
    /// Each `>` line, without the `>`.
    public var events: [String] = []
    /// Each `#` line, without the `#`.
    public var info: [String] = []
    /// The final `+…` or `-…` line, complete.
    public var final: String = ""

    public init() {}

    public var isSuccess: Bool { final.hasPrefix("+") }

    /// The error code of a `-CODE message` line.
    public var errorCode: String? {
        guard final.hasPrefix("-") else { return nil }
        return String(final.dropFirst().prefix { $0 != " " })
    }

    /// The text after `+OK ` or `-CODE `.
    public var message: String {
        guard let space = final.firstIndex(of: " ") else { return "" }
        return String(final[final.index(after: space)...])
    }
}
