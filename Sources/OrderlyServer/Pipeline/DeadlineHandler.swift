import NIOCore

/// Fixed-time limits that activity does not postpone (the idle clock is `IdleTimeoutHandler`):
/// - the login deadline: a connection must log in within a fixed time of connecting, or of
///   losing its login (a failed re-AUTH, a lock), whatever it sends meanwhile; otherwise a client
///   could hold an unauthenticated socket for ever by sending PING now and then;
/// - the session lifetime: a login lasts at most a fixed time, however busy the session, so a
///   stolen or forgotten session does not live for ever; each login starts it anew.
/// When time runs out the request in flight (a login being checked, say) is answered first; then
/// the client gets `#bye …` and the connection closes.
final class DeadlineHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let limit: TimeAmount
    /// Whether the clock runs while the session is logged in (lifetime) or while it is not
    /// (login deadline).
    private let runsWhileLoggedIn: Bool
    private let bye: String
    private var timer: Scheduled<Void>?
    private var loggedIn = false
    private var working = false
    private var expired = false

    static func loginDeadline(_ limit: TimeAmount) -> DeadlineHandler {
        DeadlineHandler(limit: limit, runsWhileLoggedIn: false, bye: "bye login deadline")
    }

    static func sessionLifetime(_ limit: TimeAmount) -> DeadlineHandler {
        DeadlineHandler(limit: limit, runsWhileLoggedIn: true, bye: "bye session expired")
    }

    private init(limit: TimeAmount, runsWhileLoggedIn: Bool, bye: String) {
        self.limit = limit
        self.runsWhileLoggedIn = runsWhileLoggedIn
        self.bye = bye
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startIfRunning(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if timer == nil { startIfRunning(context) }
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
            loggedIn = true
            startIfRunning(context)
        case is IdleTimeoutHandler.Unauthenticated:
            loggedIn = false
            startIfRunning(context)
        case is IdleTimeoutHandler.Working:
            working = true
        case is IdleTimeoutHandler.Idle:
            working = false
            if expired { context.channel.sayByeAndClose(bye) }
        default:
            break
        }
        // The idle clock, nearer the head of the pipeline, reads the same events.
        context.triggerUserOutboundEvent(event, promise: promise)
    }

    /// Starts the clock from now when the session is in the state it runs in; stops it otherwise.
    private func startIfRunning(_ context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        expired = false
        guard loggedIn == runsWhileLoggedIn else { return }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: limit) {
            let handler = bound.value
            if handler.working {
                handler.expired = true
            } else {
                channel.sayByeAndClose(handler.bye)
            }
        }
    }
}
