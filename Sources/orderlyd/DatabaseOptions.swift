import ArgumentParser
import Foundation
import Logging
import NIOPosix
import OrderlyServer
import OrderlyStore
import PostgresClient

/// Where the database is: an existing server by URL, or the embedded private cluster.
struct DatabaseOptions: ParsableArguments {
    @Option(help: "PostgreSQL URL or conninfo (env ORDERLY_DATABASE_URL). Without it, orderlyd runs its own cluster in --data-dir.")
    var databaseURL: String?

    @Option(help: "Data folder of the embedded PostgreSQL cluster.")
    var dataDir: String = "./.orderly/pgdata"

    @Option(help: "Folder with the V###__*.sql and R__*.sql migrations (env ORDERLY_SQL_DIR; found automatically in a checkout).")
    var sqlDir: String?

    @Option(help: "Folder with initdb and pg_ctl for the embedded cluster (found automatically on Debian).")
    var pgBinDir: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (env ORDERLY_LOG_LEVEL).")
    var logLevel: String?

    var url: String? { databaseURL ?? ProcessInfo.processInfo.environment["ORDERLY_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 } }

    func makeLogger() -> Logger {
        let level = (logLevel ?? ProcessInfo.processInfo.environment["ORDERLY_LOG_LEVEL"]).flatMap(Logger.Level.init(rawValue:)) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: "orderlyd")
    }

    /// Connection settings, starting the embedded cluster when no URL was given. The second value
    /// is the embedded cluster (nil for an external server); the third tells whether this process
    /// started it, rather than finding it running. The folder is claimed first, so that no second
    /// orderlyd (a server or a migration) shares it.
    func connect(logger: Logger) async throws -> (ConnectionConfig, EmbeddedPostgres?, Bool) {
        if let url { return (ConnectionConfig(url: url), nil, false) }
        let embedded = try EmbeddedPostgres(dataDirectory: dataDir, binDirectory: pgBinDir, logger: logger)
        try embedded.claim()
        let started = try await NIOThreadPool.singleton.runIfActive { try embedded.start() }
        return (embedded.connectionConfig, embedded, started)
    }

    /// Stops the embedded cluster (if any) on a thread that may block.
    static func stop(_ embedded: EmbeddedPostgres?) async {
        guard let embedded else { return }
        _ = try? await NIOThreadPool.singleton.runIfActive { embedded.stop() }
    }

    func migrator() throws -> Migrator {
        guard let directory = SQLDirectory.locate(explicit: sqlDir) else {
            throw ValidationError("cannot find the sql/ migrations folder; pass --sql-dir or set ORDERLY_SQL_DIR")
        }
        return try Migrator(directory: directory)
    }
}
