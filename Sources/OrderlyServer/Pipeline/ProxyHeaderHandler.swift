import NIOCore

/// First in the pipeline of a connection from a trusted proxy (`--trusted-proxy`): reads the
/// PROXY protocol v2 header the proxy must send before anything else, reports the client's own
/// address through `clientAddress`, passes on whatever followed it, and steps out of the
/// pipeline. A connection from a trusted proxy without a valid header is closed: accepting it
/// anyway would let a client that reaches orderlyd past the proxy choose its own address.
final class ProxyHeaderHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let clientAddress: EventLoopPromise<String>
    /// The proxy's own address: the client of a LOCAL connection (a health check).
    private let peer: String
    private var received: ByteBuffer?
    private var done = false

    init(peer: String, clientAddress: EventLoopPromise<String>) {
        self.peer = peer
        self.clientAddress = clientAddress
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        guard !done else {
            context.fireChannelRead(data)
            return
        }
        if received == nil { received = incoming } else { received!.writeBuffer(&incoming) }
        switch ProxyHeader.parse(received!) {
        case .needMore:
            return
        case .invalid(let reason):
            finish(.failure(ProxyHeaderError(reason: reason)))
            context.close(promise: nil)
        case .complete(let source, let length):
            var rest = received!
            received = nil
            rest.moveReaderIndex(forwardBy: length)
            finish(.success(source ?? peer))
            if rest.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(rest)) }
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failure(ProxyHeaderError(reason: "the connection closed before its PROXY protocol header was complete")))
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish(.failure(ProxyHeaderError(reason: "the PROXY protocol handler was removed early")))
    }

    private func finish(_ result: Result<String, Error>) {
        guard !done else { return }
        done = true
        clientAddress.completeWith(result)
    }
}

struct ProxyHeaderError: Error, CustomStringConvertible {
    let reason: String
    var description: String { reason }
}
