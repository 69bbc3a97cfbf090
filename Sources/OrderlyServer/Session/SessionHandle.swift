import OrderlyStore
import NIOConcurrencyHelpers
import NIOCore
import OrderlyProtocol

/// What the rest of the server may know and do about one connection from outside its own task:
/// who is logged in (to route events), whether its rights must be re-read, and whether it is in
/// the middle of a reply (so that pushes and shutdown wait for the reply to be complete).
final class SessionHandle: Sendable {
    let channel: Channel
    let clientAddress: String

    private struct State {
        var identity: Identity?
        /// Bumped by every "rights changed" notice; the identity is current up to `readAt`.
        var changes = 0
        var readAt = 0
        var busy = false
        var closing = false
        /// Bytes of pushed events handed to the channel but not yet to the kernel.
        var unsentPushBytes = 0
    }

    private let state = NIOLockedValueBox(State())
    private let maxUnsentPushBytes: Int

    init(channel: Channel, clientAddress: String = "unknown", maxUnsentPushBytes: Int) {
        self.channel = channel
        self.clientAddress = clientAddress
        self.maxUnsentPushBytes = maxUnsentPushBytes
    }

    var identity: Identity? { state.withLockedValue { $0.identity } }

    /// The rights as read from the database; `asOf` is what `rightsChanges()` said before the
    /// read began, so that a change announced during the read is not taken as seen.
    func setIdentity(_ identity: Identity?, asOf changes: Int? = nil) {
        let hadOne = state.withLockedValue { state in
            defer {
                state.identity = identity
                state.readAt = max(state.readAt, changes ?? state.changes)
            }
            return state.identity != nil
        }
        // The pipeline's clocks: the login deadline and the short idle limit apply again once
        // a session has lost its login, and stop when it has one.
        if hadOne && identity == nil {
            channel.triggerUserOutboundEvent(IdleTimeoutHandler.Unauthenticated(), promise: nil)
        } else if !hadOne, identity != nil {
            channel.triggerUserOutboundEvent(IdleTimeoutHandler.Authenticated(), promise: nil)
        }
    }

    /// Replaces the rights with fresh ones read for `userId`, unless the session has logged in
    /// as somebody else (or out) meanwhile, or already holds rights read later. Returns why the
    /// session must end instead, if it must (`Identity.reasonToEnd`); its rights are then left
    /// as they were, for the caller to close it.
    func refresh(userId: Int64, with fresh: Identity, asOf changes: Int) -> String? {
        state.withLockedValue { state in
            guard let current = state.identity, current.userId == userId, changes >= state.readAt else { return nil }
            if let reason = fresh.reasonToEnd(sessionOf: current) { return reason }
            state.identity = fresh
            state.readAt = max(state.readAt, changes)
            return nil
        }
    }

    /// Asks the session to re-read its rights before its next command.
    func markStale() { state.withLockedValue { $0.changes += 1 } }

    /// The change count to read the rights as of, when they must be re-read; nil when current.
    func pendingRightsChange() -> Int? {
        state.withLockedValue { state in
            state.identity != nil && state.changes > state.readAt ? state.changes : nil
        }
    }

    var rightsChanges: Int { state.withLockedValue { $0.changes } }

    /// Marks the start of handling a request; false when the session is being closed.
    func beginRequest() -> Bool {
        state.withLockedValue { state in
            guard !state.closing else { return false }
            state.busy = true
            return true
        }
    }

    /// Marks the reply as complete; true when the session must now say bye and close.
    func endRequest() -> Bool {
        state.withLockedValue { state in
            state.busy = false
            return state.closing
        }
    }

    /// Asks the session to close. Returns true when it is between requests, so the caller may
    /// close it at once; otherwise it closes itself after its current reply.
    func requestClose() -> Bool {
        state.withLockedValue { state in
            state.closing = true
            return !state.busy
        }
    }

    /// Writes a pushed line. The reply a session writes is a single buffer, so a push can only
    /// ever land between complete replies. Pushed bytes the client has not taken count against
    /// the outbound limit; past it the client is not reading its pushes and is disconnected
    /// rather than buffered for. (Replies have back-pressure of their own: a client downloading
    /// a large reply is slow, not at fault.)
    func push(_ line: String) {
        let size = line.utf8.count
        let overLimit = state.withLockedValue { state in
            state.unsentPushBytes += size
            return state.unsentPushBytes > maxUnsentPushBytes
        }
        guard !overLimit else {
            channel.close(promise: nil)
            return
        }
        let written = channel.writeAndFlush(channel.allocator.buffer(string: line))
        written.whenComplete { [state] _ in state.withLockedValue { $0.unsentPushBytes -= size } }
    }
}
