import NIOCore

/// A connection must log in within a fixed time from connecting, whatever it sends meanwhile:
/// otherwise a client could hold an unauthenticated socket for ever by sending PING now and then
/// (the idle clock restarts at every byte). The clock starts again when a session loses its
/// login (a failed re-AUTH, a lock). A request in flight when time runs out is answered first
/// (a login that is being checked is not cut off); then the client gets `#bye login deadline`.
final class LoginDeadlineHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The session has lost its login: the deadline applies again, from now.
    struct Unauthenticated: Sendable {}

    private let limit: TimeAmount
    private var timer: Scheduled<Void>?
    private var authenticated = false
    private var working = false
    private var expired = false

    init(limit: TimeAmount) { self.limit = limit }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if timer == nil && !authenticated { arm(context) }
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) { timer?.cancel() }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        context.fireChannelInactive()
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        switch event {
        case is IdleTimeoutHandler.Authenticated:
            authenticated = true
            expired = false
            timer?.cancel()
            timer = nil
        case is Unauthenticated:
            authenticated = false
            arm(context)
        case is IdleTimeoutHandler.Working:
            working = true
        case is IdleTimeoutHandler.Idle:
            working = false
            if expired { context.channel.sayByeAndClose("bye login deadline") }
        default:
            break
        }
        // The idle clock reads the same events.
        context.triggerUserOutboundEvent(event, promise: promise)
    }

    private func arm(_ context: ChannelHandlerContext) {
        timer?.cancel()
        expired = false
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: limit) {
            let handler = bound.value
            guard !handler.authenticated else { return }
            if handler.working {
                handler.expired = true
            } else {
                channel.sayByeAndClose("bye login deadline")
            }
        }
    }
}
