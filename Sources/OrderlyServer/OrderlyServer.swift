import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import OrderlyProtocol
import PostgresClient

/// The TCP server: accepts connections and runs one `Session` per connection. It owns the
/// connection pool; PostgreSQL must already be migrated.
public final class OrderlyServer: Sendable {
    public let configuration: ServerConfiguration
    /// The port actually bound (useful when the configuration asked for port 0).
    public let port: Int

    private let group: MultiThreadedEventLoopGroup
    private let listener: Channel
    private let acceptLoop: Task<Void, Never>
    private let database: OrderlyDatabase
    private let sessions: SessionRegistry
    private let logger: Logger

    /// Binds the listener and starts accepting. Returns once the port is bound.
    public static func start(_ configuration: ServerConfiguration, table: CommandTable = .standard, logger: Logger = Logger(label: "orderlyd")) async throws -> OrderlyServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        // The server works with the app role's rights only, whatever its login may do; a runaway
        // statement is cut off rather than holding a pooled connection for ever.
        let pool = ConnectionPool(
            config: configuration.database, size: configuration.poolSize,
            setupStatements: ["SET ROLE orderly_app", "SET statement_timeout = \(configuration.statementTimeoutSeconds * 1000)"],
            maximumWait: .seconds(configuration.poolWaitSeconds), logger: logger)
        do {
            let maxLine = configuration.limits.maxLineBytes
            let listener = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 512)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .bind(host: configuration.host, port: configuration.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder(maxLineBytes: maxLine)))
                        // A small inbound buffer: a client that pipelines faster than we answer
                        // is no longer read from, instead of being buffered without bound.
                        return try NIOAsyncChannel<InboundFrame, ByteBuffer>(
                            wrappingChannelSynchronously: channel,
                            configuration: .init(backPressureStrategy: .init(lowWatermark: 4, highWatermark: 32)))
                    }
                }
            return OrderlyServer(configuration: configuration, table: table, group: group, listener: listener,
                                 database: OrderlyDatabase(pool: pool, logger: logger), logger: logger)
        } catch {
            await pool.shutdown()
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private init(configuration: ServerConfiguration, table: CommandTable, group: MultiThreadedEventLoopGroup,
                 listener: NIOAsyncChannel<NIOAsyncChannel<InboundFrame, ByteBuffer>, Never>, database: OrderlyDatabase, logger: Logger) {
        self.configuration = configuration
        self.group = group
        self.listener = listener.channel
        self.port = listener.channel.localAddress?.port ?? configuration.port
        self.database = database
        self.logger = logger
        let sessions = SessionRegistry()
        self.sessions = sessions
        self.acceptLoop = Task {
            await withDiscardingTaskGroup { group in
                do {
                    try await listener.executeThenClose { inbound in
                        for try await connection in inbound {
                            group.addTask {
                                await OrderlyServer.serve(connection, table: table, database: database,
                                                          configuration: configuration, sessions: sessions, logger: logger)
                            }
                        }
                    }
                } catch {
                    logger.error("listener failed", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    /// Stops accepting, says `#bye` to every session, closes them, and releases the pool.
    public func shutdown() async {
        try? await listener.close()
        sessions.closeAll()
        await acceptLoop.value
        await database.pool.shutdown()
        try? await group.shutdownGracefully()
    }

    private static func serve(_ connection: NIOAsyncChannel<InboundFrame, ByteBuffer>, table: CommandTable, database: OrderlyDatabase,
                              configuration: ServerConfiguration, sessions: SessionRegistry, logger: Logger) async {
        let channel = connection.channel
        guard sessions.register(channel) else {
            SessionRegistry.sayByeAndClose(channel)
            return
        }
        defer { sessions.unregister(channel) }

        let address = channel.remoteAddress?.ipAddress ?? "unknown"
        var sessionLogger = logger
        sessionLogger[metadataKey: "client"] = "\(address)"
        let session = Session(table: table, database: database, configuration: configuration, clientAddress: address, logger: sessionLogger)
        do {
            try await connection.executeThenClose { inbound, outbound in
                try await outbound.write(channel.allocator.buffer(string: session.greeting))
                for try await frame in inbound {
                    let outcome = await session.handle(frame)
                    try await outbound.write(channel.allocator.buffer(string: outcome.reply))
                    if outcome.close { break }
                }
            }
        } catch {
            sessionLogger.debug("connection ended", metadata: ["error": "\(error)"])
        }
    }
}
