import NIOCore
import OrderlyProtocol

/// Closes a connection that has had no traffic either way for too long: a short limit before
/// AUTH (an unauthenticated socket costs us and gives nothing), a longer one after. The session
/// switches limits by sending `IdleTimeoutHandler.Authenticated` as an outbound user event.
final class IdleTimeoutHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Authenticated: Sendable {}

    private var timeout: TimeAmount?
    private let afterAuth: TimeAmount?
    private var timer: Scheduled<Void>?

    /// A nil limit means never.
    init(beforeAuth: TimeAmount?, afterAuth: TimeAmount?) {
        self.timeout = beforeAuth
        self.afterAuth = afterAuth
    }

    func handlerAdded(context: ChannelHandlerContext) { restart(context) }

    func handlerRemoved(context: ChannelHandlerContext) { timer?.cancel() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        restart(context)
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        restart(context)
        context.write(data, promise: promise)
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard event is Authenticated else { return context.triggerUserOutboundEvent(event, promise: promise) }
        timeout = afterAuth
        restart(context)
        promise?.succeed()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        context.fireChannelInactive()
    }

    private func restart(_ context: ChannelHandlerContext) {
        timer?.cancel()
        guard let timeout else { timer = nil; return }
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: timeout) {
            let bye = channel.allocator.buffer(string: Reply.info("bye idle timeout"))
            channel.writeAndFlush(bye).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
