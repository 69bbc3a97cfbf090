import OrderlyStore
import NIOConcurrencyHelpers
import NIOCore
import OrderlyProtocol

/// The open sessions: to push each event to the sessions of its recipient, to refresh rights
/// when an admin changes them, and to close everything at shutdown.
final class SessionRegistry: Sendable {
    private struct State {
        var sessions: [ObjectIdentifier: SessionHandle] = [:]
        var closing = false
        /// Who each logged-in session counts for, and how many sessions each user has: kept
        /// under this lock at login and logout, so that two logins at once cannot both take the
        /// last place.
        var loginOf: [ObjectIdentifier: Int64] = [:]
        var loginsPerUser: [Int64: Int] = [:]

        mutating func release(_ key: ObjectIdentifier) {
            guard let user = loginOf.removeValue(forKey: key) else { return }
            let left = (loginsPerUser[user] ?? 1) - 1
            loginsPerUser[user] = left > 0 ? left : nil
        }
    }

    private let state = NIOLockedValueBox(State())
    let maxConnections: Int

    init(maxConnections: Int) { self.maxConnections = maxConnections }

    var count: Int { state.withLockedValue { $0.sessions.count } }

    enum Admission { case admitted, full, tooManyUnauthenticated, shuttingDown }

    /// - Parameter maxUnauthenticatedPerAddress: how many sessions of the new one's address may
    ///   be without a login already (0: any number).
    func register(_ session: SessionHandle, maxUnauthenticatedPerAddress: Int = 0) -> Admission {
        state.withLockedValue { state in
            if state.closing { return .shuttingDown }
            if state.sessions.count >= maxConnections { return .full }
            if maxUnauthenticatedPerAddress > 0 {
                // Counted when asked rather than kept up to date at every login and logout: a
                // connection is accepted far less often than its session changes.
                let waiting = state.sessions.values.lazy.filter { $0.clientAddress == session.clientAddress && $0.identity == nil }.count
                if waiting >= maxUnauthenticatedPerAddress { return .tooManyUnauthenticated }
            }
            state.sessions[ObjectIdentifier(session)] = session
            return .admitted
        }
    }

    func unregister(_ session: SessionHandle) {
        state.withLockedValue { state in
            state.release(ObjectIdentifier(session))
            _ = state.sessions.removeValue(forKey: ObjectIdentifier(session))
        }
    }

    /// Counts `session` as logged in for `userId` (no longer for whoever it was before), unless
    /// that user has `max` sessions already (0: no cap): then false, and it counts for nobody.
    func login(_ session: SessionHandle, userId: Int64, max: Int) -> Bool {
        state.withLockedValue { state in
            let key = ObjectIdentifier(session)
            state.release(key)
            if max > 0, state.loginsPerUser[userId, default: 0] >= max { return false }
            state.loginOf[key] = userId
            state.loginsPerUser[userId, default: 0] += 1
            return true
        }
    }

    /// The session has no login any more.
    func logout(_ session: SessionHandle) {
        state.withLockedValue { $0.release(ObjectIdentifier(session)) }
    }

    private var all: [SessionHandle] { state.withLockedValue { Array($0.sessions.values) } }

    /// Sessions logged in as `userId`, or holding `role`.
    func sessions(userId: Int64? = nil, role: String? = nil) -> [SessionHandle] {
        all.filter { session in
            guard let identity = session.identity else { return false }
            return identity.userId == userId || (role.map { identity.roles.contains($0) } ?? false)
        }
    }

    func pushEvent(_ event: Event) {
        let line = Reply.event(kind: event.kind, json: event.json)
        for session in sessions(userId: event.userId, role: event.role) {
            guard let identity = session.identity else { continue }
            // A pushed event is the inbox read live: a role whose inbox.read was revoked hears
            // no more than INBOX would show it.
            guard identity.permissions.contains("inbox.read") else { continue }
            // An event for a role other than "customer" is the staff's document: a customer's
            // login holding that role (an admin's "buyers") reads it in INBOX, as customers see it.
            if identity.customer == true, event.userId == nil, event.role != "customer" { continue }
            session.push(line)
        }
    }

    /// The users logged in now, once each.
    var loggedInUsers: [Int64] {
        Array(Set(all.compactMap { $0.identity?.userId }))
    }

    func markAllStale() { all.forEach { $0.markStale() } }

    /// Refuses new connections; sessions between requests say bye and close now, the others
    /// right after their current reply. Returns the sessions still busy.
    @discardableResult
    func closeAll() -> [SessionHandle] {
        let sessions = state.withLockedValue { state in
            state.closing = true
            return Array(state.sessions.values)
        }
        var busy: [SessionHandle] = []
        for session in sessions {
            if session.requestClose() { session.channel.sayByeAndClose() } else { busy.append(session) }
        }
        return busy
    }

    /// Closes whatever is still open, replies or not.
    func forceCloseAll() {
        for session in all { session.channel.close(promise: nil) }
    }
}
