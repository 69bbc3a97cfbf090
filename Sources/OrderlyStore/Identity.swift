/// Who a session is, as `api.authenticate` / `api.user_permissions` report it.
public struct Identity: Sendable, Decodable, Equatable {
    public let userId: Int64
    public let username: String
    public let displayName: String?
    public let roles: [String]
    public let permissions: Set<String>
    /// Locked by an admin: the session must end. Only `api.user_permissions` reports it.
    public let locked: Bool?

    enum CodingKeys: String, CodingKey {
        case userId = "user_id", username, displayName = "display_name", roles, permissions, locked
    }
}
