import NIOConcurrencyHelpers
import NIOCore
import OrderlyProtocol

/// What the rest of the server may know and do about one connection from outside its own task:
/// who is logged in (to route events), whether its rights must be re-read, and whether it is in
/// the middle of a reply (so that pushes and shutdown wait for the reply to be complete).
final class SessionHandle: Sendable {
    let channel: Channel

    private struct State {
        var identity: Identity?
        var needsRefresh = false
        var busy = false
        var closing = false
    }

    private let state = NIOLockedValueBox(State())

    init(channel: Channel) { self.channel = channel }

    var identity: Identity? { state.withLockedValue { $0.identity } }

    func setIdentity(_ identity: Identity?) {
        state.withLockedValue {
            $0.identity = identity
            $0.needsRefresh = false
        }
    }

    /// Asks the session to re-read its rights before its next command.
    func markStale() { state.withLockedValue { $0.needsRefresh = true } }

    /// True (once) when the rights must be re-read.
    func takeStale() -> Bool {
        state.withLockedValue { state in
            defer { state.needsRefresh = false }
            return state.needsRefresh && state.identity != nil
        }
    }

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
    /// ever land between complete replies. A client that has let more than the outbound limit
    /// pile up is not reading: it is disconnected rather than buffered for.
    func push(_ line: String) {
        guard channel.isWritable else {
            channel.close(promise: nil)
            return
        }
        channel.writeAndFlush(channel.allocator.buffer(string: line), promise: nil)
    }

    /// `#bye`, then close; a client that does not read cannot hold this up for more than `grace`.
    func sayByeAndClose(_ reason: String? = nil, grace: TimeAmount = .seconds(1)) {
        let channel = self.channel
        let bye = channel.allocator.buffer(string: Reply.info(reason.map { "bye " + $0 } ?? "bye"))
        channel.writeAndFlush(bye).whenComplete { _ in channel.close(promise: nil) }
        channel.eventLoop.scheduleTask(in: grace) { channel.close(promise: nil) }
    }
}
