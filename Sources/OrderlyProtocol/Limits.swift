/// Protocol limits shared by the server (which enforces them) and clients (which may read them
/// from the greeting).
public struct Limits: Sendable, Equatable {
    /// Longest request line in bytes, without its line terminator.
    public var maxLineBytes: Int
    /// Deepest nesting of a JSON value inside a request.
    public var maxJSONDepth: Int

    public init(maxLineBytes: Int = 64 * 1024, maxJSONDepth: Int = 32) {
        self.maxLineBytes = maxLineBytes
        self.maxJSONDepth = maxJSONDepth
    }
}
