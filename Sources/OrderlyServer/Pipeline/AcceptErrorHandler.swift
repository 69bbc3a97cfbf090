import Logging
import NIOCore

/// Keeps a failed accept (out of file descriptors, say) from reaching the listener's async
/// stream, which would end it and leave the port bound but never accepted from again.
final class AcceptErrorHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = Any

    let logger: Logger

    init(logger: Logger) { self.logger = logger }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.error("accepting a connection failed", metadata: ["error": "\(error)"])
    }
}
