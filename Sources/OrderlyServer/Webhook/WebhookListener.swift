import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import OrderlyStore

/// The carriers' webhook: an HTTP/1.1 listener, opt-in (`--webhook-listen`), beside the
/// protocol's listeners. See `WebhookHandler` for what it answers.
enum WebhookListener {
    static func bind(_ settings: ServerConfiguration.Webhook, group: EventLoopGroup, database: OrderlyDatabase, logger: Logger) async throws -> Channel {
        let limiter = RateLimiter(perMinute: settings.requestsPerMinute)
        let idle = TimeAmount.seconds(Int64(max(1, settings.idleSeconds)))
        // Connections open, all and per client address.
        let open = NIOLockedValueBox((all: 0, byAddress: [String: Int]()))
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let address = channel.remoteAddress?.ipAddress ?? "unknown"
                let admitted = open.withLockedValue { open in
                    guard open.all < settings.maxConnections,
                          open.byAddress[address, default: 0] < settings.maxConnectionsPerAddress else { return false }
                    open.all += 1
                    open.byAddress[address, default: 0] += 1
                    return true
                }
                guard admitted else {
                    return channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Busy()) }
                }
                channel.closeFuture.whenComplete { _ in
                    open.withLockedValue { open in
                        open.all -= 1
                        let left = open.byAddress[address, default: 1] - 1
                        open.byAddress[address] = left > 0 ? left : nil
                    }
                }
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    // Headers are limited by NIO's parser (80 KiB); malformed HTTP gets a 400.
                    try sync.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: true)
                    try sync.addHandler(IdleStateHandler(readTimeout: idle))
                    try sync.addHandler(WebhookHandler(database: database, limiter: limiter, maxBody: settings.maxBodyBytes,
                                                       requestDeadline: idle, logger: logger))
                }
            }
            .bind(host: settings.host, port: settings.port)
            .get()
    }
}

/// Over the cap: answers 503 (a carrier retries it) as soon as the connection is up, reads
/// nothing of the request, and closes.
private final class Busy: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    func channelActive(context: ChannelHandlerContext) {
        let busy = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        let channel = context.channel
        context.writeAndFlush(NIOAny(channel.allocator.buffer(string: busy))).whenComplete { _ in channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}
