import ArgumentParser
import Foundation
import Logging
import NIOPosix
import OrderlyServer
import SMTPClient
import OrderlyStore
import PostgresClient
import SystemLimits

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the server (the default).")

    @OptionGroup var database: DatabaseOptions

    @Option(help: "Address to listen on, HOST:PORT (env ORDERLY_LISTEN).")
    var listen: String?

    @Flag(help: "Create one demo user per role and print their passwords (env ORDERLY_DEMO=1).")
    var demo = false

    @Option(help: "Database connections in the pool.")
    var poolSize: Int = 8

    @Option(help: "Longest request line in bytes.")
    var maxLine: Int = 64 * 1024

    @Flag(help: "Do not run pending migrations at start (when the login may not change the schema).")
    var skipMigrations = false

    @Option(help: "Also listen with TLS on HOST:PORT (needs --tls-cert and --tls-key).")
    var tlsListen: String?

    @Option(help: "PEM certificate chain for the TLS listener.")
    var tlsCert: String?

    @Option(help: "PEM private key for the TLS listener.")
    var tlsKey: String?

    @Flag(help: "Let the plain, unencrypted listener bind an address other than loopback.")
    var allowPlaintextRemote = false

    @Option(help: "Connections open at once; one more is answered -BUSY.")
    var maxConnections: Int = 10_000

    @Option(help: "Bytes one reply may hold; a larger one is refused with TOO_LARGE instead of being built in memory.")
    var maxReplyBytes: Int = 8 << 20

    @Option(help: "Requests read ahead per connection before the server stops reading from it.")
    var maxInFlight: Int = 32

    @Option(help: "Bytes waiting to be sent to one client before a client that does not read is disconnected.")
    var maxOutboundBytes: Int = 1 << 20

    @Option(help: "Seconds a connection may stay silent before AUTH.")
    var idleTimeoutBeforeAuth: Int = 30

    @Option(help: "Seconds a connection has to log in, from connecting or from losing its login, whatever it sends (0: no limit).")
    var loginDeadline: Int = 30

    @Option(help: "Connections from one client address that have not logged in yet (0: no limit); one more is refused with BUSY.")
    var maxUnauthenticatedPerAddress: Int = 256

    @Option(help: "Sessions one user may have logged in at once (0: no limit); one more AUTH is refused with BUSY.")
    var maxSessionsPerUser: Int = 100

    @Option(help: "Seconds a login lasts, however busy the session (0: no limit); then the client must log in again.")
    var sessionLifetime: Int = 12 * 3600

    @Option(help: "Seconds an authenticated connection may stay silent (0: no limit).")
    var idleTimeout: Int = 3600

    @Option(help: "Seconds a connection's replies may stay unsent (the client reads nothing) before it is closed.")
    var writeStallTimeout: Int = 60

    @Option(help: "Failed AUTHs for one username from one address before each further try from there must wait.")
    var authMaxFailures: Int = 5

    @Option(help: "Seconds of the first such wait; each further failure doubles it.")
    var authFirstDelay: Int = 1

    @Option(help: "Longest such wait, in seconds.")
    var authMaxDelay: Int = 900

    @Option(help: .hidden)
    var authLockout: Int?

    @Option(help: "Failed AUTHs for one username from all addresses after which every try waits a little and admins are told.")
    var authMaxAccountFailures: Int = 20

    @Option(help: "Longest wait for a username past that ceiling, in seconds.")
    var authAccountMaxDelay: Int = 10

    @Option(help: "Failed AUTHs from one address, any usernames, after which it may not try until they age out of the window.")
    var authMaxAddressFailures: Int = 50

    @Option(help: "The window for counting failed AUTHs, in seconds.")
    var authFailureWindow: Int = 900

    @Option(help: "Share of the pool's connections that may check passwords at once (bcrypt is slow); more AUTHs wait their turn.")
    var authPoolShare: Double = 0.5

    @Option(help: "Seconds an AUTH waits for its turn at a password check before -BUSY.")
    var authWait: Int = 10

    @Option(name: .customLong("trusted-proxy"),
            help: "An address or CIDR range (repeatable) whose connections begin with a PROXY protocol v2 header naming the client (haproxy send-proxy-v2).")
    var trustedProxies: [String] = []

    @Option(help: "Seconds one database statement may run before it is cancelled (-BUSY).")
    var statementTimeout: Int = 30

    @Option(help: "Seconds a shutdown waits for requests in progress.")
    var shutdownGrace: Int = 8

    @Option(help: "Seconds between looks for overdue approval steps (reminders, escalation); 0: never.")
    var approvalReminderInterval: Int = 60

    @Option(help: "Seconds between checks of open orders for delay risks (delay.warning); 0: never (pg_cron runs api.run_delay_checks).")
    var delayCheckInterval: Int = 60

    @Option(help: "Seconds between refreshes of the analytics rollups (REPORT, BI views); 0: never (pg_cron runs api.refresh_analytics).")
    var analyticsInterval: Int = 30

    @Option(help: "HOST:PORT of the carriers' webhook (HTTP/1.1, POST /carriers/<code>/events); none when not given.")
    var webhookListen: String?

    @Option(help: "Largest webhook body accepted, in bytes (413 above).")
    var webhookMaxBody: Int = 65_536

    @Option(help: "Webhook requests a minute accepted from one address (429 above).")
    var webhookRate: Int = 600

    @Option(help: "Webhook connections open at once; one more is answered 503 and closed.")
    var webhookMaxConnections: Int = 256

    @Option(help: "Webhook connections open at once from one client address (503 above).")
    var webhookMaxConnectionsPerAddress: Int = 32

    @Option(help: "Where customer e-mail goes: smtp://[user:password@]host[:port][?starttls=yes|no|required] or smtps://…; also ORDERLY_SMTP_URL. None: the outbox is kept, not sent.")
    var smtpUrl: String?

    @Option(help: "The sender address of customer e-mail.")
    var smtpFrom: String = "orders@orderly.localhost"

    @Option(help: "PEM CA certificates to check the SMTP relay's certificate against, instead of the system's.")
    var smtpCa: String?

    @Option(help: "Seconds between looks for e-mail to send.")
    var smtpInterval: Int = 5

    @Option(help: "Attempts to send one e-mail before it is given up (its error kept in orderly.outbox).")
    var smtpMaxAttempts: Int = 8

    @Option(help: "Seconds to wait after a failed attempt; doubles with each attempt.")
    var smtpBackoff: Int = 60

    func validate() throws {
        guard (1...256).contains(poolSize) else { throw ValidationError("--pool-size must be between 1 and 256") }
        guard (256...16 * 1024 * 1024).contains(maxLine) else { throw ValidationError("--max-line must be between 256 and 16777216 bytes") }
        guard maxReplyBytes >= 1024 else { throw ValidationError("--max-reply-bytes must be at least 1024") }
        guard maxConnections > 0, maxInFlight > 0, maxOutboundBytes >= 1024 else {
            throw ValidationError("--max-connections and --max-in-flight must be positive, --max-outbound-bytes at least 1024")
        }
        guard idleTimeoutBeforeAuth >= 0, idleTimeout >= 0, loginDeadline >= 0, maxUnauthenticatedPerAddress >= 0, maxSessionsPerUser >= 0, sessionLifetime >= 0, writeStallTimeout > 0, authMaxFailures > 0, authMaxAddressFailures > 0,
              authFailureWindow > 0, authFirstDelay > 0, authMaxDelay > 0, (authLockout ?? 1) > 0, authMaxAccountFailures > 0,
              authAccountMaxDelay > 0, authWait >= 0, statementTimeout > 0, shutdownGrace >= 0, approvalReminderInterval >= 0, delayCheckInterval >= 0, analyticsInterval >= 0,
              webhookMaxBody >= 256, webhookRate > 0, webhookMaxConnections > 0, webhookMaxConnectionsPerAddress > 0, smtpInterval > 0, smtpMaxAttempts > 0, smtpBackoff > 0 else {
            throw ValidationError("timeouts and limits must not be negative")
        }
        for range in trustedProxies where AddressRange(range) == nil {
            throw ValidationError("--trusted-proxy \(range): not an IPv4 or IPv6 address or CIDR range")
        }
        guard authPoolShare > 0 && authPoolShare <= 1 else { throw ValidationError("--auth-pool-share must be above 0 and at most 1") }
        guard (tlsListen == nil) == (tlsCert == nil) && (tlsListen == nil) == (tlsKey == nil) else {
            throw ValidationError("--tls-listen, --tls-cert and --tls-key go together")
        }
        _ = try Serve.demoRequested(flag: demo, environment: ProcessInfo.processInfo.environment)
    }

    /// `--demo`, or `ORDERLY_DEMO=1`: how docker-compose.yml passes `ORDERLY_DEMO=1 docker compose up`
    /// through, so that the demo users (fixed passwords) exist only where someone asked for them.
    /// Any value but 1, 0 or empty is refused rather than guessed.
    static func demoRequested(flag: Bool, environment: [String: String]) throws -> Bool {
        if flag { return true }
        switch environment["ORDERLY_DEMO"] ?? "" {
        case "", "0": return false
        case "1": return true
        default: throw ValidationError("ORDERLY_DEMO must be 1 (create the demo users) or 0")
        }
    }

    /// The `--auth-*` flags. `--auth-lockout` is the old name of `--auth-max-delay`, from when
    /// failures locked the account.
    var loginPolicy: LoginPolicy {
        var policy = LoginPolicy()
        policy.freeFailures = authMaxFailures
        policy.failureWindowSeconds = authFailureWindow
        policy.firstDelaySeconds = authFirstDelay
        policy.maxDelaySeconds = authLockout ?? authMaxDelay
        policy.addressFailures = authMaxAddressFailures
        policy.accountFailures = authMaxAccountFailures
        policy.accountMaxDelaySeconds = authAccountMaxDelay
        policy.poolShare = authPoolShare
        policy.waitSeconds = authWait
        return policy
    }

    func run() async throws {
        let logger = database.makeLogger()
        // Each client is a file descriptor: past the limit, accepting would fail; refuse
        // politely (-BUSY) before that instead.
        let files = FileLimit.raise()
        var maxConnections = self.maxConnections
        if files > 0 && files < maxConnections + 100 {
            maxConnections = max(1, files - 100)
            logger.warning("the open-file limit is below --max-connections; lowering it", metadata: ["limit": "\(files)", "max_connections": "\(maxConnections)"])
        }
        let (host, port) = try Serve.parseListen(listen ?? ProcessInfo.processInfo.environment["ORDERLY_LISTEN"] ?? "127.0.0.1:7400")
        // The embedded cluster is private to this server: it stops with it, even when it was
        // found still running after a crash; a second server on the folder is refused.
        let (connection, embedded, _) = try await database.connect(logger: logger)
        do {
            if !skipMigrations {
                let report = try await database.migrator().migrate(connection, logger: logger)
                logger.info("database is current", metadata: ["applied": "\(report.applied.count)"])
            }
            if try Serve.demoRequested(flag: demo, environment: ProcessInfo.processInfo.environment) {
                try await DemoUsers.create(connection)
            }
            var serverLogin = connection
            if let embedded {
                serverLogin = try await NIOThreadPool.singleton.runIfActive { try embedded.serverLoginConfig() }
            }
            var configuration = ServerConfiguration(
                host: host, port: port, database: serverLogin, poolSize: poolSize,
                login: loginPolicy, maxConnections: maxConnections, maxRequestsInFlight: maxInFlight,
                maxOutboundBytes: maxOutboundBytes, idleSecondsBeforeAuth: idleTimeoutBeforeAuth, idleSecondsAfterAuth: idleTimeout,
                writeStallSeconds: writeStallTimeout,
                shutdownGraceSeconds: shutdownGrace, allowPlaintextRemote: allowPlaintextRemote, statementTimeoutSeconds: statementTimeout)
            configuration.limits.maxLineBytes = maxLine
            configuration.approvalReminderSeconds = approvalReminderInterval
            configuration.delayCheckSeconds = delayCheckInterval
            configuration.analyticsSeconds = analyticsInterval
            if let webhookListen {
                let (webhookHost, webhookPort) = try Serve.parseListen(webhookListen)
                configuration.webhook = .init(host: webhookHost, port: webhookPort)
                configuration.webhook?.maxBodyBytes = webhookMaxBody
                configuration.webhook?.requestsPerMinute = webhookRate
                configuration.webhook?.maxConnections = webhookMaxConnections
                configuration.webhook?.maxConnectionsPerAddress = webhookMaxConnectionsPerAddress
            }
            if let smtpURL = smtpUrl ?? ProcessInfo.processInfo.environment["ORDERLY_SMTP_URL"] {
                configuration.smtp = try SMTPSettings(url: smtpURL, from: smtpFrom)
                configuration.smtp?.caFile = smtpCa
            }
            configuration.outbox.intervalSeconds = smtpInterval
            configuration.outbox.maxAttempts = smtpMaxAttempts
            configuration.outbox.backoffSeconds = smtpBackoff
            configuration.loginDeadlineSeconds = loginDeadline
            configuration.maxUnauthenticatedPerAddress = maxUnauthenticatedPerAddress
            configuration.maxSessionsPerUser = maxSessionsPerUser
            configuration.sessionLifetimeSeconds = sessionLifetime
            configuration.trustedProxies = trustedProxies.compactMap(AddressRange.init)
            configuration.maxReplyBytes = maxReplyBytes
            if let tlsListen, let tlsCert, let tlsKey {
                let (tlsHost, tlsPort) = try Serve.parseListen(tlsListen)
                configuration.tls = .init(host: tlsHost, port: tlsPort, certificatePath: tlsCert, privateKeyPath: tlsKey)
            }
            let server = try await OrderlyServer.start(configuration, logger: logger)
            Console.say("orderlyd \(OrderlyVersion.current) listening on \(host):\(server.port) — try: nc \(host) \(server.port)")
            if let tlsPort = server.tlsPort, let tls = configuration.tls {
                Console.say("TLS listening on \(tls.host):\(tlsPort) — try: orderly --tls --port \(tlsPort) --user … "
                            + "(--tls-ca FILE for a certificate the system does not trust)")
            }
            if let webhookPort = server.webhookPort, let webhook = configuration.webhook {
                Console.say("carriers' webhook listening on http://\(webhook.host):\(webhookPort)/carriers/<code>/events")
            }
            let signal = await Signals.wait(for: [SIGINT, SIGTERM])
            logger.info("stopping", metadata: ["signal": "\(signal)"])
            await server.shutdown()
        } catch {
            await DatabaseOptions.stop(embedded)
            throw error
        }
        await DatabaseOptions.stop(embedded)
    }

    static func parseListen(_ text: String) throws -> (String, Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw ValidationError("--listen must be HOST:PORT, e.g. 127.0.0.1:7400")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "127.0.0.1" : host, port)
    }
}
