/// Where and how to connect. Everything not given here comes from libpq's own defaults and the
/// PG* environment variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, …).
public struct ConnectionConfig: Sendable {
    /// A `postgres://` URL or a `key=value` conninfo string; nil or empty uses the environment.
    public var url: String?
    /// Overrides the database named by `url` or the environment.
    public var database: String?
    public var applicationName: String
    public var connectTimeoutSeconds: Int

    public init(url: String? = nil, database: String? = nil, applicationName: String = "orderlyd", connectTimeoutSeconds: Int = 5) {
        self.url = url
        self.database = database
        self.applicationName = applicationName
        self.connectTimeoutSeconds = connectTimeoutSeconds
    }

    /// The keyword/value pairs for `PQconnectdbParams`, in the order libpq must see them: libpq
    /// keeps the last value of a repeated keyword, so our defaults come first (a URL may override
    /// them) and the explicit database override comes last.
    var keywordValues: [(String, String)] {
        var pairs: [(String, String)] = [
            ("application_name", applicationName),
            ("connect_timeout", String(connectTimeoutSeconds)),
        ]
        if let url, !url.isEmpty { pairs.append(("dbname", url)) }
        if let database { pairs.append(("dbname", database)) }
        return pairs
    }

    public func with(database: String) -> ConnectionConfig {
        var copy = self
        copy.database = database
        return copy
    }
}
