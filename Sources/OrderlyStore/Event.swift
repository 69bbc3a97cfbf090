/// A notification as the LISTEN connection hands it on (to the server, which pushes it to the
/// sessions it is for).
public struct Event: Sendable, Equatable {
    public let id: Int64
    public let kind: String
    public let userId: Int64?
    public let role: String?
    /// The object pushed as `>kind {json}`, the same shape `INBOX` shows.
    public let json: String

    public init(id: Int64, kind: String, userId: Int64?, role: String?, json: String) {
        self.id = id
        self.kind = kind
        self.userId = userId
        self.role = role
        self.json = json
    }
}
