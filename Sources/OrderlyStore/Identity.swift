/// Who a session is, as `api.authenticate` / `api.user_permissions` report it.
public struct Identity: Sendable, Decodable, Equatable {
    public let userId: Int64
    public let username: String
    public let displayName: String?
    public let roles: [String]
    public let permissions: Set<String>
    /// Locked by an admin: the session must end. Only `api.user_permissions` reports it.
    public let locked: Bool?
    /// A tag of the password the user has (`orderly.credential_tag`): it changes with the password.
    public let credential: String?
    /// A customer's login (`orderly.own_customer`): HELP leaves out the staff-only commands.
    public let customer: Bool?

    enum CodingKeys: String, CodingKey {
        case userId = "user_id", username, displayName = "display_name", roles, permissions, locked, credential, customer
    }

    /// Why a session that logged in as `earlier` must end, now that the user is `self` (read
    /// afresh): an admin locked the account, the password changed since that login, or a role
    /// the session had was revoked. Nil: it goes on, with these rights. A login made after the
    /// change has the new password and roles already, so a late notice never ends it.
    public func reasonToEnd(sessionOf earlier: Identity) -> String? {
        if locked == true { return "account locked by an administrator" }
        if let before = earlier.credential, before != credential { return "password changed" }
        if !Set(earlier.roles).isSubset(of: roles) { return "a role was revoked" }
        return nil
    }
}
