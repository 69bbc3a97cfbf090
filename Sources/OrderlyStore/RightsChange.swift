import Foundation

/// The payload of `NOTIFY orderly_roles`, sent by every admin function that changes who may do
/// what: `{"change": "user.lock", "username": …, "user_id": …, "role": …}`.
public struct RightsChange: Decodable, Equatable, Sendable {
    public let change: String?
    public let userId: Int64?
    public let role: String?

    enum CodingKeys: String, CodingKey {
        case change, userId = "user_id", role
    }

    public init?(payload: String) {
        guard let decoded = try? JSONDecoder().decode(RightsChange.self, from: Data(payload.utf8)) else { return nil }
        self = decoded
    }

    /// An admin lock ends the user's sessions. An automatic lockout after failed logins does not:
    /// otherwise anyone could throw a user out by failing to log in as them.
    public var endsSessions: Bool { change == "user.lock" }
}
