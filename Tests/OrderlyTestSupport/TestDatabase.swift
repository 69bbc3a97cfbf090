import Foundation
import Logging
import NIOPosix
import OrderlyServer
import OrderlyStore
import PostgresClient

/// A database of its own for one test, cloned from a migrated template, dropped afterwards.
///
/// The server comes from `ORDERLY_TEST_DATABASE_URL`, or from the PG* environment that
/// `pg_virtualenv` (run by `make test`) sets. The login must be allowed to create databases and
/// roles (a superuser, as in pg_virtualenv).
public struct TestDatabase: Sendable {
    public let name: String
    /// Connects to this database as the test login (a superuser): for setting up data and for
    /// playing the admin in SQL.
    public let config: ConnectionConfig

    /// The database as a URL or conninfo string for another process (orderlyd, orderly-bench);
    /// without ORDERLY_TEST_DATABASE_URL the PG* variables of the test cluster fill in the rest.
    public var conninfo: String {
        let base = config.url ?? ""
        return base.isEmpty ? "dbname=\(name)" : base.replacing(/\/[^\/?]*(\?|$)/, with: { "/\(name)" + $0.1 })
    }

    /// Runs one parameterised statement on a connection of its own.
    @discardableResult
    public func execute(_ sql: String, _ parameters: [String?] = []) async throws -> QueryResult {
        let config = self.config
        return try await TestCluster.databaseThreads.runIfActive {
            let connection = try Connection(config: config)
            defer { connection.close() }
            return try connection.queryOnce(sql, parameters)
        }
    }

    /// Creates an Orderly user through the admin SQL API.
    public func createUser(_ username: String, password: String, roles: [String]) async throws {
        let array = "{" + roles.joined(separator: ",") + "}"
        try await execute("SELECT admin.create_user($1, $2, $3::text[])", [username, password, array])
    }

    /// A fresh database, migrated unless `migrated` is false (then it is empty).
    public static func create(migrated: Bool = true) async throws -> TestDatabase {
        let template = migrated ? try await Template.shared.name() : "template0"
        let name = "orderly_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        try await TestCluster.admin("CREATE DATABASE \(name) TEMPLATE \(template)")
        return TestDatabase(name: name, config: TestCluster.base.with(database: name))
    }

    public func drop() async {
        _ = try? await TestCluster.admin("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    }
}

/// Runs `body` with a fresh database and drops it afterwards, whatever happens.
public func withTestDatabase<T>(migrated: Bool = true, _ body: (TestDatabase) async throws -> T) async throws -> T {
    let database = try await TestDatabase.create(migrated: migrated)
    do {
        let result = try await body(database)
        await database.drop()
        return result
    } catch {
        await database.drop()
        throw error
    }
}

public enum TestCluster {
    public static var base: ConnectionConfig {
        ConnectionConfig(url: ProcessInfo.processInfo.environment["ORDERLY_TEST_DATABASE_URL"], applicationName: "orderly-tests")
    }

    /// The checkout's `sql/` folder.
    public static var sqlDirectory: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("sql").path
    }

    /// The threads that test setup's database calls block on: two, so that the suites, which
    /// all start at once, queue their setup instead of all hashing passwords and cloning
    /// databases at the same moment; and not `NIOThreadPool.singleton`, whose threads tests that
    /// start clusters (initdb, pg_ctl) hold for many seconds, long enough for a login waiting
    /// behind them to outlast a server's idle limit.
    static let databaseThreads: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        return pool
    }()

    public static let logger: Logger = {
        var logger = Logger(label: "orderly.tests")
        logger.logLevel = .warning
        return logger
    }()

    /// Runs a statement on the server's maintenance database (names here are generated, not input).
    @discardableResult
    static func admin(_ sql: String, _ parameters: [String?] = []) async throws -> QueryResult {
        try await TestCluster.databaseThreads.runIfActive {
            let connection = try Connection(config: base)
            defer { connection.close() }
            return try connection.queryOnce(sql, parameters)
        }
    }
}

/// The migrated template, built once per content of `sql/` and shared by every test (and by later
/// runs while `sql/` is unchanged). Cloning it is much faster than migrating each database.
actor Template {
    static let shared = Template()
    private var built: String?

    func name() async throws -> String {
        if let built { return built }
        let directory = TestCluster.sqlDirectory
        let migrator = try Migrator(directory: directory)
        let name = "orderly_tpl_" + Template.fingerprint(migrator.scripts)
        try await TestCluster.databaseThreads.runIfActive {
            // The lock lives in the maintenance database, so it serialises test processes too.
            let lock = try Connection(config: TestCluster.base)
            defer { lock.close() }
            try lock.queryOnce("SELECT pg_advisory_lock(7400742)")
            if try lock.queryOnce("SELECT 1 FROM pg_database WHERE datname = $1", [name]).count > 0 { return }
            let building = name + "_build"
            try lock.executeScript("DROP DATABASE IF EXISTS \(building) WITH (FORCE)")
            try lock.executeScript("CREATE DATABASE \(building) TEMPLATE template0")
            let connection = try Connection(config: TestCluster.base.with(database: building))
            _ = try migrator.migrate(on: connection, logger: TestCluster.logger)
            connection.close()
            try lock.executeScript("ALTER DATABASE \(building) RENAME TO \(name)")
        }
        built = name
        return name
    }

    /// FNV-1a over every script: names a template after exactly the SQL it holds.
    static func fingerprint(_ scripts: [Migrator.Script]) -> String {
        var hash: UInt64 = 0xcbf29ce484222325
        for script in scripts {
            for byte in (script.name + "\u{0}" + script.sql).utf8 {
                hash ^= UInt64(byte)
                hash = hash &* 0x100000001b3
            }
        }
        return String(hash, radix: 16)
    }
}
