import NIOCore

/// Closes connections that make no progress:
/// - no traffic either way for too long: a short limit before AUTH (an unauthenticated socket
///   costs us and gives nothing), a longer one after; the session switches limits by sending
///   `IdleTimeoutHandler.Authenticated` as an outbound user event. From `Working` to `Idle`
///   (sent by `RequestTracker` while any request is in flight) the connection is not idle,
///   however long that takes and whatever else arrives meanwhile: a busy database must not cost
///   clients their connections;
/// - writes stalled for too long: a client that sends but never reads would otherwise hold its
///   buffered replies for ever.
/// Either way the client gets `#bye …`, and the connection is closed a moment later even if it
/// reads nothing more.
final class IdleTimeoutHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Authenticated: Sendable {}
    /// The session has lost its login (a failed re-AUTH, a lock): the short limit applies again.
    struct Unauthenticated: Sendable {}
    /// A request is in flight: no idle clock until `Idle`.
    struct Working: Sendable {}
    /// Nothing is in flight any more: the idle clock starts.
    struct Idle: Sendable {}

    private var timeout: TimeAmount?
    private let beforeAuth: TimeAmount?
    private let afterAuth: TimeAmount?
    private let stallLimit: TimeAmount
    private var timer: Scheduled<Void>?
    private var stallTimer: Scheduled<Void>?
    private var closing = false
    private var working = false

    /// A nil limit means never.
    init(beforeAuth: TimeAmount?, afterAuth: TimeAmount?, stallLimit: TimeAmount) {
        self.timeout = beforeAuth
        self.beforeAuth = beforeAuth
        self.afterAuth = afterAuth
        self.stallLimit = stallLimit
    }

    func handlerAdded(context: ChannelHandlerContext) { restart(context) }

    func handlerRemoved(context: ChannelHandlerContext) { cancelTimers() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        restart(context)
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        restart(context)
        context.write(data, promise: promise)
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        switch event {
        case is Working:
            working = true
        case is Idle:
            working = false
        case is Authenticated:
            timeout = afterAuth
        case is Unauthenticated:
            timeout = beforeAuth
        default:
            return context.triggerUserOutboundEvent(event, promise: promise)
        }
        restart(context)
        promise?.succeed()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        stallTimer?.cancel()
        stallTimer = nil
        if !context.channel.isWritable {
            let channel = context.channel
            stallTimer = context.eventLoop.scheduleTask(in: stallLimit) {
                channel.sayByeAndClose("bye not reading")
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelTimers()
        context.fireChannelInactive()
    }

    private func cancelTimers() {
        timer?.cancel()
        stallTimer?.cancel()
    }

    private func restart(_ context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        guard let timeout, !closing, !working else { return }
        let channel = context.channel
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: timeout) {
            // The bye below passes through write(): it must not start the clock again.
            bound.value.closing = true
            channel.sayByeAndClose("bye idle timeout")
        }
    }
}
