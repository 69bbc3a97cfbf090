import OrderlyStore
import SMTPClient
import OrderlyProtocol
import PostgresClient

/// Everything `OrderlyServer` needs to run; `orderlyd` fills it from flags and environment.
public struct ServerConfiguration: Sendable {
    public var host: String
    /// 0 picks a free port (tests).
    public var port: Int
    public var database: ConnectionConfig
    public var poolSize: Int
    public var limits: Limits
    /// How failed logins are throttled, and how many password checks may run at once.
    public var login: LoginPolicy
    /// The most bytes of JSON one reply's rows may add up to; a larger reply is refused
    /// (`TOO_LARGE`) without being built in memory.
    public var maxReplyBytes = 8 << 20
    /// Connections open at once; one more is answered `-BUSY` and closed.
    public var maxConnections: Int
    /// Requests read ahead of the one being answered. Past it the server stops reading from that
    /// client (TCP back-pressure) instead of buffering.
    public var maxRequestsInFlight: Int
    /// Bytes waiting to be sent to one client; a client that lets its pushed events pile up past
    /// this is disconnected.
    public var maxOutboundBytes: Int
    /// A connection with no traffic for this long is closed: short before AUTH, long after.
    public var idleSecondsBeforeAuth: Int
    /// 0: never.
    public var idleSecondsAfterAuth: Int
    /// A connection must log in within this long from connecting (or from losing its login),
    /// whatever it sends meanwhile; 0: no deadline.
    public var loginDeadlineSeconds: Int = 30
    /// Connections from one client address that have not logged in (yet); one more is answered
    /// `-BUSY` and closed. 0: no cap.
    public var maxUnauthenticatedPerAddress: Int = 256
    /// Sessions one user may have logged in at once; one more AUTH is answered `-BUSY` (the
    /// session stays, without a login). Without it one login (a customer's) could take every
    /// connection the server has. 0: no cap.
    public var maxSessionsPerUser: Int = 100
    /// Longest a login lasts, however busy the session; then `#bye session expired`. 0: no limit.
    public var sessionLifetimeSeconds: Int = 12 * 3600
    /// A connection whose replies cannot be sent (the client reads nothing) for this long is
    /// closed.
    public var writeStallSeconds: Int
    /// Over-long lines one connection may send before it is closed.
    public var maxOversizedLines: Int
    /// Longest a shutdown waits for requests in progress before closing their connections.
    public var shutdownGraceSeconds: Int
    /// A TLS listener next to the plain one, if configured.
    public var tls: TLSListener?
    /// Lets the plain (unencrypted) listener bind an address other people can reach.
    public var allowPlaintextRemote: Bool
    /// Peers that must begin every connection with a PROXY protocol v2 header naming the real
    /// client (haproxy with `send-proxy-v2`); that address is then the client's for every
    /// per-address limit and the audit log. Nobody else's header is read.
    public var trustedProxies: [AddressRange] = []

    public struct TLSListener: Sendable {
        public var host: String
        public var port: Int
        public var certificatePath: String
        public var privateKeyPath: String

        public init(host: String, port: Int, certificatePath: String, privateKeyPath: String) {
            self.host = host
            self.port = port
            self.certificatePath = certificatePath
            self.privateKeyPath = privateKeyPath
        }
    }

    /// Longest a single database statement may run before it is cancelled (`BUSY`).
    public var statementTimeoutSeconds: Int
    /// Longest a request waits for a free pooled connection before `BUSY`.
    public var poolWaitSeconds: Int
    /// How often overdue approval steps are looked for (reminders, escalation); 0: never (an
    /// installation may run `api.run_approval_reminders` from pg_cron instead).
    public var approvalReminderSeconds: Int = 60
    /// How often open orders are checked for delay risks (`api.run_delay_checks`); 0: never
    /// (pg_cron instead).
    public var delayCheckSeconds: Int = 60
    /// How often the analytics rollups are refreshed (`api.refresh_analytics`); 0: never
    /// (pg_cron instead).
    public var analyticsSeconds: Int = 30
    /// The carriers' webhook listener (`--webhook-listen`); nil: none.
    public var webhook: Webhook?
    /// Where customer e-mail goes (`--smtp-url`); nil: the outbox is kept but not sent.
    public var smtp: SMTPSettings?
    public var outbox = OutboxPolicy()
    public var version: String

    public struct Webhook: Sendable {
        public var host: String
        public var port: Int
        public var maxBodyBytes: Int = 65_536
        /// Requests a minute from one address (bursts of a sixth of it).
        public var requestsPerMinute: Int = 600
        /// A connection that sends nothing for this long is closed.
        public var idleSeconds: Int = 30
        /// Connections open at once; one more is answered 503 and closed (each carrier needs a
        /// few; the cap keeps a flood from using up the server's file descriptors).
        public var maxConnections: Int = 256
        /// Of those, from one client address (so that one address cannot take them all).
        public var maxConnectionsPerAddress: Int = 32

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    public struct OutboxPolicy: Sendable {
        /// Seconds between looks for e-mail to send.
        public var intervalSeconds: Int = 5
        /// Sending attempts before a message is given up (its error kept in the outbox).
        public var maxAttempts: Int = 8
        /// The wait after a failed attempt; it doubles with each attempt (at most a day).
        public var backoffSeconds: Int = 60
        /// Messages claimed at once by one server.
        public var batch: Int = 10

        public init() {}
    }

    public init(
        host: String = "127.0.0.1", port: Int = 7400, database: ConnectionConfig = ConnectionConfig(),
        poolSize: Int = 8, limits: Limits = Limits(), login: LoginPolicy = LoginPolicy(),
        maxConnections: Int = 10_000, maxRequestsInFlight: Int = 32, maxOutboundBytes: Int = 1 << 20,
        idleSecondsBeforeAuth: Int = 30, idleSecondsAfterAuth: Int = 3600, writeStallSeconds: Int = 60, maxOversizedLines: Int = 3,
        shutdownGraceSeconds: Int = 8, tls: TLSListener? = nil, allowPlaintextRemote: Bool = false, statementTimeoutSeconds: Int = 30,
        poolWaitSeconds: Int = 10, version: String = OrderlyVersion.current
    ) {
        self.host = host
        self.port = port
        self.database = database
        self.poolSize = poolSize
        self.limits = limits
        self.login = login
        self.maxConnections = maxConnections
        self.maxRequestsInFlight = maxRequestsInFlight
        self.maxOutboundBytes = maxOutboundBytes
        self.idleSecondsBeforeAuth = idleSecondsBeforeAuth
        self.idleSecondsAfterAuth = idleSecondsAfterAuth
        self.writeStallSeconds = writeStallSeconds
        self.maxOversizedLines = maxOversizedLines
        self.shutdownGraceSeconds = shutdownGraceSeconds
        self.tls = tls
        self.allowPlaintextRemote = allowPlaintextRemote
        self.statementTimeoutSeconds = statementTimeoutSeconds
        self.poolWaitSeconds = poolWaitSeconds
        self.version = version
    }
}

public enum OrderlyVersion {
    public static let current = "0.1.0"
    public static let protocolVersion = 1
}
