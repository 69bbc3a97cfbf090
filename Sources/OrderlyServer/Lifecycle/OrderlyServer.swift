import LineFraming
import OrderlyStore
import Logging
import LoopExecutor
import NIOCore
import NIOPosix
import NIOSSL
import OrderlyProtocol
import PostgresClient
import SMTPClient

/// The TCP server: accepts connections (plain, and TLS when configured), runs one `Session`
/// per connection, pushes events from the LISTEN connection, and shuts down gracefully.
/// PostgreSQL must already be migrated.
public final class OrderlyServer: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public let configuration: ServerConfiguration
    /// The ports actually bound (useful when the configuration asked for port 0).
    public let port: Int
    public let tlsPort: Int?
    /// The webhook listener's port, when there is one.
    public let webhookPort: Int?
    /// Connections open right now (as STATS reports them).
    public var openConnections: Int { context.sessions.count }

    private let group: MultiThreadedEventLoopGroup
    private let listeners: [Channel]
    private let webhook: Channel?
    private let acceptLoops: [Task<Void, Never>]
    private let context: ServerContext
    /// The work that runs beside the sessions (the LISTEN connection, the reminder timer): each
    /// one a `run()`, started together here and stopped together by cancelling this task.
    private let background: Task<Void, Never>
    private let logger: Logger

    private typealias Connection = NIOAsyncChannel<InboundFrame, ByteBuffer>

    /// A connection as accepted, with its client's address: the peer's own, or for a trusted
    /// proxy's connection the one its PROXY protocol header names (once that has arrived).
    private struct Accepted: Sendable {
        let connection: Connection
        let clientAddress: EventLoopFuture<String>
    }

    /// Binds the listeners and starts accepting. Returns once the ports are bound.
    public static func start(_ configuration: ServerConfiguration, table: CommandTable = .standard, logger: Logger = Logger(label: "orderlyd")) async throws -> OrderlyServer {
        guard configuration.allowPlaintextRemote || isLoopback(configuration.host) else {
            throw Failure(description: "the plain listener \(configuration.host) is not a loopback address: use --tls-listen for remote clients, or --allow-plaintext-remote")
        }
        if let webhook = configuration.webhook, !configuration.allowPlaintextRemote, !isLoopback(webhook.host) {
            throw Failure(description: "the webhook listener \(webhook.host) is not a loopback address: put a TLS proxy (haproxy) in front of it, or --allow-plaintext-remote")
        }
        let tlsContext = try configuration.tls.map { tls in
            var settings = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(tls.certificatePath).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: tls.privateKeyPath, format: .pem)))
            // swift-nio-ssl would accept TLS 1.0 and 1.1, which are deprecated (RFC 8996).
            settings.minimumTLSVersion = .tlsv12
            return try NIOSSLContext(configuration: settings)
        }
        let smtp = try configuration.smtp.map { try SMTPSender(settings: $0) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        // The server works with the app role's rights only, whatever its login may do; a runaway
        // statement is cut off rather than holding a pooled connection for ever.
        let pool = ConnectionPool(
            config: configuration.database, size: configuration.poolSize,
            // UTC: every time a client sends without an offset, and every day (a requested date
            // "not in the past"), is UTC as the README says, whatever the database's default zone.
            setupStatements: ["SET ROLE orderly_app", "SET statement_timeout = \(configuration.statementTimeoutSeconds * 1000)",
                              "SET TIME ZONE 'UTC'"],
            maximumWait: .seconds(configuration.poolWaitSeconds), logger: logger)
        let context = ServerContext(
            configuration: configuration, commands: LiveCommandTable(builtins: table), database: OrderlyDatabase(pool: pool, logger: logger),
            sessions: SessionRegistry(maxConnections: configuration.maxConnections), metrics: ServerMetrics())
        do {
            // Every command but the built-ins comes from the registry: no serving without it.
            try await context.commands.reload(from: context.database)
            var bound = [try await bind(configuration.host, configuration.port, tls: nil, group: group, context: context, logger: logger)]
            if let tls = configuration.tls {
                bound.append(try await bind(tls.host, tls.port, tls: tlsContext, group: group, context: context, logger: logger))
            }
            var webhook: Channel?
            if let settings = configuration.webhook {
                webhook = try await WebhookListener.bind(settings, group: group, database: context.database, logger: logger)
            }
            return OrderlyServer(configuration: configuration, context: context, group: group, listeners: bound, webhook: webhook,
                                 smtp: smtp, logger: logger)
        } catch {
            await pool.shutdown()
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private static func bind(_ host: String, _ port: Int, tls: NIOSSLContext?, group: EventLoopGroup,
                             context: ServerContext, logger: Logger) async throws -> NIOAsyncChannel<Accepted, Never> {
        let configuration = context.configuration, metrics = context.metrics
        let answersPing: Bool = { if case .builtin(.ping)? = context.commands.table.resolve(["PING"])?.action { true } else { false } }()
        let maxLine = configuration.limits.maxLineBytes
        let idleBefore = configuration.idleSecondsBeforeAuth > 0 ? TimeAmount.seconds(Int64(configuration.idleSecondsBeforeAuth)) : nil
        let idleAfter = configuration.idleSecondsAfterAuth > 0 ? TimeAmount.seconds(Int64(configuration.idleSecondsAfterAuth)) : nil
        let loginDeadline = configuration.loginDeadlineSeconds > 0 ? TimeAmount.seconds(Int64(configuration.loginDeadlineSeconds)) : nil
        let sessionLifetime = configuration.sessionLifetimeSeconds > 0 ? TimeAmount.seconds(Int64(configuration.sessionLifetimeSeconds)) : nil
        let stallLimit = TimeAmount.seconds(Int64(max(1, configuration.writeStallSeconds)))
        let inFlight = max(1, configuration.maxRequestsInFlight)
        let outbound = max(1024, configuration.maxOutboundBytes)
        let trustedProxies = configuration.trustedProxies
        return try await ServerBootstrap(group: group)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptErrorHandler(logger: logger))
                }
            }
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: outbound / 2, high: outbound))
            // A client that sends its requests and then shuts its sending side (nc -N, a script)
            // ends the session's inbound stream only: the requests read are answered, then the
            // session closes the connection (without this, NIO closed it at the client's EOF and
            // the replies were lost).
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let peer = channel.remoteAddress?.ipAddress ?? "unknown"
                    let clientAddress: EventLoopFuture<String>
                    // The PROXY header comes before anything else, TLS included.
                    if trustedProxies.contains(where: { $0.contains(peer) }) {
                        let promise = channel.eventLoop.makePromise(of: String.self)
                        try channel.pipeline.syncOperations.addHandler(ProxyHeaderHandler(peer: peer, clientAddress: promise))
                        clientAddress = promise.futureResult
                    } else {
                        clientAddress = channel.eventLoop.makeSucceededFuture(peer)
                    }
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.addHandler(IdleTimeoutHandler(beforeAuth: idleBefore, afterAuth: idleAfter, stallLimit: stallLimit))
                    // After the idle clock: they see the login and request events on their way to it.
                    if let loginDeadline { try channel.pipeline.syncOperations.addHandler(DeadlineHandler.loginDeadline(loginDeadline)) }
                    if let sessionLifetime { try channel.pipeline.syncOperations.addHandler(DeadlineHandler.sessionLifetime(sessionLifetime)) }
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder(maxLineBytes: maxLine)))
                    try channel.pipeline.syncOperations.addHandler(RequestTracker(metrics: metrics, answersPing: answersPing))
                    // A small inbound buffer: a client that pipelines faster than we answer is no
                    // longer read from, instead of being buffered without bound.
                    let connection = try Connection(
                        wrappingChannelSynchronously: channel,
                        configuration: .init(backPressureStrategy: .init(lowWatermark: max(1, inFlight / 2), highWatermark: inFlight)))
                    return Accepted(connection: connection, clientAddress: clientAddress)
                }
            }
    }

    private init(configuration: ServerConfiguration, context: ServerContext, group: MultiThreadedEventLoopGroup,
                 listeners: [NIOAsyncChannel<Accepted, Never>], webhook: Channel?, smtp: SMTPSender?, logger: Logger) {
        self.configuration = configuration
        self.webhook = webhook
        self.webhookPort = webhook?.localAddress?.port
        self.context = context
        self.group = group
        self.listeners = listeners.map(\.channel)
        self.port = listeners[0].channel.localAddress?.port ?? configuration.port
        self.tlsPort = listeners.count > 1 ? listeners[1].channel.localAddress?.port : nil
        self.logger = logger
        self.acceptLoops = listeners.map { listener in
            Task {
                await withDiscardingTaskGroup { group in
                    do {
                        try await listener.executeThenClose { inbound in
                            for try await accepted in inbound {
                                group.addTask { await OrderlyServer.serve(accepted, context: context, logger: logger) }
                            }
                        }
                    } catch {
                        logger.error("listener failed", metadata: ["error": "\(error)"])
                    }
                }
            }
        }
        let sessions = context.sessions, metrics = context.metrics, database = context.database, commands = context.commands
        var listenConfig = configuration.database
        listenConfig.applicationName = "orderlyd-listen"
        let events = EventListener(config: listenConfig, logger: logger, handlers: .init(
            events: { events in
                for event in events { sessions.pushEvent(event) }
                metrics.eventsPushed(events.count)
            },
            commandsChanged: {
                Task {
                    do {
                        try await commands.reload(from: database)
                    } catch {
                        logger.warning("the command registry could not be reloaded", metadata: ["error": "\(error)"])
                    }
                }
            },
            rolesChanged: { payload in
                guard let payload, let change = RightsChange(payload: payload), let userId = change.userId else {
                    // A role's permissions changed (or we may have missed something): every
                    // session re-reads its rights before its next command, and the rights of
                    // the idle ones are read now, one user at a time (the events a session is
                    // pushed depend on them: a revoked inbox.read must stop them).
                    sessions.markAllStale()
                    let users = sessions.loggedInUsers
                    Task {
                        for userId in users { await refreshRights(of: userId, in: sessions, from: database) }
                    }
                    return
                }
                let affected = sessions.sessions(userId: userId)
                guard !affected.isEmpty else { return }
                if change.endsSessions {
                    for session in affected {
                        session.push(Reply.event(kind: "session.closed", json: #"{"reason":"account locked by an administrator"}"#))
                        session.channel.close(promise: nil)
                    }
                    return
                }
                // Re-read now rather than at the next command: which events reach a session
                // depends on its roles, and an idle session must stop getting a revoked role's.
                affected.forEach { $0.markStale() }
                Task { await refreshRights(of: userId, in: sessions, from: database) }
            }))
        var jobs = [
            RecurringJob("approval reminders", every: configuration.approvalReminderSeconds, logger: logger) {
                try await database.runApprovalReminders()
            },
            RecurringJob("delay checks", every: configuration.delayCheckSeconds, logger: logger) {
                try await database.runDelayChecks()
            },
            RecurringJob("analytics refresh", every: configuration.analyticsSeconds, logger: logger) {
                try await database.refreshAnalytics()
            },
        ]
        if let smtp {
            let delivery = OutboxDelivery(sender: smtp, policy: configuration.outbox, database: database, group: group, logger: logger)
            jobs.append(RecurringJob("e-mail outbox", every: configuration.outbox.intervalSeconds, logger: logger) {
                try await delivery.pass()
            })
        }
        self.background = Task { [jobs] in
            await withDiscardingTaskGroup { group in
                group.addTask { await events.run() }
                for job in jobs { group.addTask { await job.run() } }
            }
        }
    }

    /// Stops accepting; sessions between requests say `#bye` and close at once, the others after
    /// their current reply (for at most `shutdownGraceSeconds`); then the pool is released.
    public func shutdown() async {
        background.cancel()
        await background.value
        for listener in listeners { try? await listener.close() }
        try? await webhook?.close()
        let busy = context.sessions.closeAll()
        let sessions = context.sessions, grace = Duration.seconds(configuration.shutdownGraceSeconds)
        // Whichever comes first: the busy sessions have closed, or the grace period is over.
        await withTaskGroup(of: Void.self) { group in
            group.addTask { for session in busy { try? await session.channel.closeFuture.get() } }
            group.addTask { try? await Task.sleep(for: grace) }
            await group.next()
            group.cancelAll() // ends the sleep
            // Closes the sessions still answering, which ends the wait for them too.
            sessions.forceCloseAll()
        }
        // Fail whatever still waits for a database connection, so that no session outlives the
        // grace period waiting for one.
        await context.database.pool.shutdown()
        for loop in acceptLoops { await loop.value }
        try? await group.shutdownGracefully()
    }

    private static func serve(_ accepted: Accepted, context: ServerContext, logger: Logger) async {
        await withTaskExecutorPreference(EventLoopExecutor(accepted.connection.channel.eventLoop)) {
            await serveOnItsLoop(accepted, context: context, logger: logger)
        }
    }

    private static func serveOnItsLoop(_ accepted: Accepted, context: ServerContext, logger: Logger) async {
        let connection = accepted.connection, channel = connection.channel
        let address: String
        do {
            address = try await accepted.clientAddress.get()
        } catch {
            logger.warning("a connection from a trusted proxy is closed: no valid PROXY protocol header",
                           metadata: ["proxy": "\(channel.remoteAddress?.ipAddress ?? "unknown")", "error": "\(error)"])
            try? await connection.executeThenClose { _, _ in }
            return
        }
        let handle = SessionHandle(channel: channel, clientAddress: address, maxUnsentPushBytes: context.configuration.maxOutboundBytes)
        let admission = context.sessions.register(handle, maxUnauthenticatedPerAddress: context.configuration.maxUnauthenticatedPerAddress)
        defer { if admission == .admitted { context.sessions.unregister(handle) } }

        var sessionLogger = logger
        sessionLogger[metadataKey: "client"] = "\(address)"
        let session = Session(handle: handle, server: context, clientAddress: address, logger: sessionLogger)
        do {
            // Every path goes through executeThenClose: an async channel must be finished.
            try await connection.executeThenClose { inbound, outbound in
                switch admission {
                case .admitted:
                    context.metrics.connectionAccepted()
                case .full:
                    context.metrics.connectionRefused()
                    try await outbound.write(channel.allocator.buffer(string: Reply.error(.busy, "too many connections; try again later")))
                    return
                case .tooManyUnauthenticated:
                    context.metrics.connectionRefused()
                    try await outbound.write(channel.allocator.buffer(
                        string: Reply.error(.busy, "too many connections from your address that have not logged in; try again later")))
                    return
                case .shuttingDown:
                    try await outbound.write(channel.allocator.buffer(string: Reply.info("bye")))
                    return
                }
                try await outbound.write(channel.allocator.buffer(string: session.greeting))
                channel.triggerUserOutboundEvent(RequestTracker.Answered(), promise: nil)
                for try await frame in inbound {
                    guard handle.beginRequest() else { break }
                    let outcome = await session.handle(frame)
                    try await outbound.write(channel.allocator.buffer(bytes: outcome.reply))
                    channel.triggerUserOutboundEvent(RequestTracker.Answered(), promise: nil)
                    let shuttingDown = handle.endRequest()
                    if shuttingDown {
                        try await outbound.write(channel.allocator.buffer(string: Reply.info("bye")))
                        break
                    }
                    if outcome.close { break }
                }
            }
        } catch {
            sessionLogger.debug("connection ended", metadata: ["error": "\(error)"])
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

/// Reads `userId`'s rights afresh for its sessions (marked stale by the caller); a password change
/// or a revoked role ends the sessions logged in before it.
private func refreshRights(of userId: Int64, in sessions: SessionRegistry, from database: OrderlyDatabase) async {
    let affected = sessions.sessions(userId: userId)
    let asOf = affected.map { $0.rightsChanges }
    guard !affected.isEmpty, let fresh = try? await database.identity(userId: userId) else { return }
    for (session, changes) in zip(affected, asOf) {
        if let reason = session.refresh(userId: userId, with: fresh, asOf: changes) {
            session.push(Reply.event(kind: "session.closed", json: "{\"reason\":\(JSONText.quote(reason))}"))
            session.channel.close(promise: nil)
        }
    }
}
