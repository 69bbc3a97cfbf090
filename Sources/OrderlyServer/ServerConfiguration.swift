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
    /// Failed AUTH attempts for one username within `failureWindowSeconds` that lock it.
    public var maxAuthFailures: Int
    public var failureWindowSeconds: Int
    public var lockoutSeconds: Int
    /// Longest a single database statement may run before it is cancelled (`BUSY`).
    public var statementTimeoutSeconds: Int
    /// Longest a request waits for a free pooled connection before `BUSY`.
    public var poolWaitSeconds: Int
    public var version: String

    public init(
        host: String = "127.0.0.1", port: Int = 7400, database: ConnectionConfig = ConnectionConfig(),
        poolSize: Int = 8, limits: Limits = Limits(), maxAuthFailures: Int = 5,
        failureWindowSeconds: Int = 15 * 60, lockoutSeconds: Int = 15 * 60, statementTimeoutSeconds: Int = 30,
        poolWaitSeconds: Int = 10, version: String = OrderlyVersion.current
    ) {
        self.host = host
        self.port = port
        self.database = database
        self.poolSize = poolSize
        self.limits = limits
        self.maxAuthFailures = maxAuthFailures
        self.failureWindowSeconds = failureWindowSeconds
        self.lockoutSeconds = lockoutSeconds
        self.statementTimeoutSeconds = statementTimeoutSeconds
        self.poolWaitSeconds = poolWaitSeconds
        self.version = version
    }
}

public enum OrderlyVersion {
    public static let current = "0.1.0"
    public static let protocolVersion = 1
}
