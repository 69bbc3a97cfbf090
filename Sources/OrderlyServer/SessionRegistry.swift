import NIOConcurrencyHelpers
import NIOCore
import OrderlyProtocol

/// The open connections, so that the server can reach all of them: to say `#bye` at shutdown
/// (and, later, to push events to the right sessions).
final class SessionRegistry: Sendable {
    private struct State {
        var channels: [ObjectIdentifier: Channel] = [:]
        var closing = false
    }

    private let state = NIOLockedValueBox(State())

    var count: Int { state.withLockedValue { $0.channels.count } }

    /// Adds a connection; false once the server is shutting down (the caller then closes it).
    func register(_ channel: Channel) -> Bool {
        state.withLockedValue { state in
            guard !state.closing else { return false }
            state.channels[ObjectIdentifier(channel)] = channel
            return true
        }
    }

    func unregister(_ channel: Channel) {
        state.withLockedValue { _ = $0.channels.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// Refuses new connections and says `#bye` to every open one, then closes it. A client that
    /// does not read cannot hold this up: each connection is closed after `grace` at the latest.
    func closeAll(grace: TimeAmount = .seconds(1)) {
        let channels = state.withLockedValue { state in
            state.closing = true
            return Array(state.channels.values)
        }
        for channel in channels { SessionRegistry.sayByeAndClose(channel, grace: grace) }
    }

    static func sayByeAndClose(_ channel: Channel, grace: TimeAmount = .seconds(1)) {
        let bye = channel.allocator.buffer(string: Reply.info("bye"))
        channel.writeAndFlush(bye).whenComplete { _ in channel.close(promise: nil) }
        channel.eventLoop.scheduleTask(in: grace) { channel.close(promise: nil) }
    }
}
