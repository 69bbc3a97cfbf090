import Logging
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
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
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
