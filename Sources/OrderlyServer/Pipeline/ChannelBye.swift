import NIOCore
import OrderlyProtocol

extension Channel {
    /// Says `#bye …` and closes: as soon as the line is written, or after `grace` at the latest,
    /// so that a client that reads nothing cannot hold the connection open.
    func sayByeAndClose(_ text: String = "bye", grace: TimeAmount = .seconds(1)) {
        let channel = self
        channel.triggerUserOutboundEvent(RequestTracker.Closing(), promise: nil)
        channel.writeAndFlush(channel.allocator.buffer(string: Reply.info(text))).whenComplete { _ in channel.close(promise: nil) }
        channel.eventLoop.scheduleTask(in: grace) { channel.close(promise: nil) }
    }
}
