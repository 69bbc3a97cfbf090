/// Where and how to connect. Everything not given here comes from libpq's own defaults and the
/// PG* environment variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, …).
public struct ConnectionConfig: Sendable {
    /// A `postgres://` URL or a `key=value` conninfo string; nil or empty uses the environment.
    public var url: String?
    /// Overrides the database named by `url` or the environment.
    public var database: String?
    public var applicationName: String
    public var connectTimeoutSeconds: Int
    /// Over TCP: an idle connection is probed after this many seconds of silence (then every 10 s,
    /// given up after 3 unanswered probes), so that a silent network partition ends it instead of
    /// leaving it open for ever (the LISTEN connection would otherwise wait forever for events).
    public var keepaliveIdleSeconds: Int
    /// Over TCP: data unacknowledged this long ends the connection (`tcp_user_timeout`).
    public var tcpUserTimeoutSeconds: Int

    public init(url: String? = nil, database: String? = nil, applicationName: String = "orderlyd", connectTimeoutSeconds: Int = 5,
                keepaliveIdleSeconds: Int = 30, tcpUserTimeoutSeconds: Int = 60) {
        self.url = url
        self.database = database
        self.applicationName = applicationName
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.keepaliveIdleSeconds = keepaliveIdleSeconds
        self.tcpUserTimeoutSeconds = tcpUserTimeoutSeconds
    }

    /// The keyword/value pairs for `PQconnectdbParams`, in the order libpq must see them: libpq
    /// keeps the last value of a repeated keyword, so our defaults come first (a URL may override
    /// them), then the explicit database override, and last the client encoding, which nothing
    /// may change.
    var keywordValues: [(String, String)] {
        var pairs: [(String, String)] = [
            ("application_name", applicationName),
            ("connect_timeout", String(connectTimeoutSeconds)),
            // libpq ignores these on Unix-domain sockets.
            ("keepalives", "1"),
            ("keepalives_idle", String(keepaliveIdleSeconds)),
            ("keepalives_interval", "10"),
            ("keepalives_count", "3"),
            ("tcp_user_timeout", String(tcpUserTimeoutSeconds * 1000)),
        ]
        if let url, !url.isEmpty { pairs.append(("dbname", url)) }
        if let database { pairs.append(("dbname", database)) }
        // Last, so that no URL changes it: the server hands rows' bytes on to its clients as
        // they come (Connection.query(_:_:maxBytes:eachValue:)), and its protocol is UTF-8.
        pairs.append(("client_encoding", "UTF8"))
        return pairs
    }

    public func with(database: String) -> ConnectionConfig {
        var copy = self
        copy.database = database
        return copy
    }
}
