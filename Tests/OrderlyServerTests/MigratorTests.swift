import Foundation
import OrderlyServer
import OrderlyStore
import NIOPosix
import OrderlyTestSupport
import PostgresClient
import Testing

@Suite struct MigratorTests {
    /// A private copy of `sql/`, so that a test may change files.
    func copyOfSQL() throws -> String {
        let directory = TemporaryFiles.path("orderly-sql")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: TestCluster.sqlDirectory) where name.hasSuffix(".sql") {
            try FileManager.default.copyItem(atPath: TestCluster.sqlDirectory + "/" + name, toPath: directory + "/" + name)
        }
        return directory
    }

    func append(_ text: String, to file: String) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(text.utf8))
        try handle.close()
    }

    @Test func appliesEverythingOnceThenNothing() async throws {
        try await withTestDatabase(migrated: false) { database in
            let migrator = try Migrator(directory: TestCluster.sqlDirectory)
            let first = try await migrator.migrate(database.config, logger: TestCluster.logger)
            #expect(first.applied == migrator.scripts.map(\.name))
            #expect(first.applied.first?.hasPrefix("V001__") == true)
            let second = try await migrator.migrate(database.config, logger: TestCluster.logger)
            #expect(second.applied.isEmpty)
            let recorded = try await database.execute("SELECT count(*) FROM orderly_meta.migrations WHERE checksum ~ '^[0-9a-f]{64}$'").scalar
            #expect(recorded == String(migrator.scripts.count))
        }
    }

    @Test func objectsAreOwnedByTheOwnerRole() async throws {
        try await withTestDatabase { database in
            let owners = try await database.execute("""
                SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname IN ('orderly', 'admin', 'analytics')
                UNION SELECT DISTINCT pg_get_userbyid(p.proowner) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname IN ('orderly', 'api', 'admin')
                  -- The one exception (V022__bi_logins.sql): the BI login maker's functions.
                  AND p.oid NOT IN ('admin.create_bi_login(text, text, interval)'::regprocedure,
                                    'admin.set_bi_login_password(text, text)'::regprocedure, 'admin.drop_bi_login(text)'::regprocedure)
                """).rows.map { $0[0] }
            #expect(owners == ["orderly_owner"])
            let maker = try await database.execute(
                "SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE oid = 'admin.create_bi_login(text, text, interval)'::regprocedure").scalar
            #expect(maker == "orderly_login_maker")
        }
    }

    @Test func aChangedVersionedFileIsRefused() async throws {
        try await withTestDatabase(migrated: false) { database in
            let directory = try copyOfSQL()
            _ = try await Migrator(directory: directory).migrate(database.config, logger: TestCluster.logger)
            let versioned = try #require(try Migrator(directory: directory).scripts.first { $0.version == 2 })
            try append("\n-- an innocent-looking edit\n", to: directory + "/" + versioned.name)
            await #expect(throws: Migrator.Failure.changedAfterApply(versioned.name)) {
                _ = try await Migrator(directory: directory).migrate(database.config, logger: TestCluster.logger)
            }
        }
    }

    @Test func aChangedRepeatableFileRunsAgain() async throws {
        try await withTestDatabase(migrated: false) { database in
            let directory = try copyOfSQL()
            _ = try await Migrator(directory: directory).migrate(database.config, logger: TestCluster.logger)
            let repeatable = try #require(try Migrator(directory: directory).scripts.first { $0.kind == .repeatable })
            try append("\n-- changed\n", to: directory + "/" + repeatable.name)
            let report = try await Migrator(directory: directory).migrate(database.config, logger: TestCluster.logger)
            #expect(report.applied == [repeatable.name])
        }
    }

    @Test func aFailingFileChangesNothing() async throws {
        try await withTestDatabase(migrated: false) { database in
            let directory = try copyOfSQL()
            try "CREATE TABLE orderly.half_done (id int);\nSELECT 1/0;\n".write(toFile: directory + "/V900__broken.sql", atomically: true, encoding: .utf8)
            await #expect(throws: Migrator.Failure.self) {
                _ = try await Migrator(directory: directory).migrate(database.config, logger: TestCluster.logger)
            }
            let table = try await database.execute("SELECT to_regclass('orderly.half_done')::text").scalar
            #expect(table == nil)
            let recorded = try await database.execute("SELECT count(*) FROM orderly_meta.migrations WHERE name = 'V900__broken.sql'").scalar
            #expect(recorded == "0")
        }
    }

    @Test func aScriptThatCommitsIsRefused() async throws {
        try await withTestDatabase(migrated: false) { database in
            let directory = try copyOfSQL()
            try "CREATE TABLE orderly.sneaky (id int);\nCOMMIT;\n".write(toFile: directory + "/V900__commits.sql", atomically: true, encoding: .utf8)
            await #expect(throws: Migrator.Failure.self) {
                _ = try await Migrator(directory: directory).migrate(database.config, logger: TestCluster.logger)
            }
            let recorded = try await database.execute("SELECT count(*) FROM orderly_meta.migrations WHERE name = 'V900__commits.sql'").scalar
            #expect(recorded == "0")
        }
    }

    @Test func misnamedAndOutOfOrderFilesAreRefused() async throws {
        let misnamed = try copyOfSQL()
        try "SELECT 1;".write(toFile: misnamed + "/v3_lowercase.sql", atomically: true, encoding: .utf8)
        #expect(throws: Migrator.Failure.unrecognisedFile("v3_lowercase.sql")) { try Migrator(directory: misnamed) }

        try await withTestDatabase { database in
            let directory = try copyOfSQL()
            try "SELECT 1;".write(toFile: directory + "/V900__late.sql", atomically: true, encoding: .utf8)
            _ = try await Migrator(directory: directory).migrate(database.config, logger: TestCluster.logger)
            try "SELECT 1;".write(toFile: directory + "/V899__forgotten.sql", atomically: true, encoding: .utf8)
            await #expect(throws: Migrator.Failure.outOfOrder("V899__forgotten.sql", appliedUpTo: 900)) {
                _ = try await Migrator(directory: directory).migrate(database.config, logger: TestCluster.logger)
            }
        }
    }

    @Test func crlfLineEndingsDoNotCountAsAChange() async throws {
        try await withTestDatabase(migrated: false) { database in
            let directory = try copyOfSQL()
            _ = try await Migrator(directory: directory).migrate(database.config, logger: TestCluster.logger)
            let first = try #require(try Migrator(directory: directory).scripts.first)
            try first.sql.replacingOccurrences(of: "\n", with: "\r\n").write(toFile: directory + "/" + first.name, atomically: true, encoding: .utf8)
            let report = try await Migrator(directory: directory).migrate(database.config, logger: TestCluster.logger)
            #expect(report.applied.isEmpty)
        }
    }

    @Test func aDatabaseNotInUTF8IsRefused() async throws {
        let name = "orderly_latin1_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(12)
        let admin = TestCluster.base
        try await NIOThreadPool.singleton.runIfActive {
            let connection = try Connection(config: admin)
            defer { connection.close() }
            try connection.executeScript("CREATE DATABASE \(name) TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'")
        }
        let migrator = try Migrator(directory: TestCluster.sqlDirectory)
        let outcome: String
        do {
            _ = try await migrator.migrate(admin.with(database: name), logger: TestCluster.logger)
            outcome = "migrated"
        } catch let failure as Migrator.Failure {
            outcome = failure.description
        }
        let schemas = try await NIOThreadPool.singleton.runIfActive { () -> String? in
            let connection = try Connection(config: admin.with(database: name))
            defer { connection.close() }
            return try connection.queryOnce("SELECT count(*)::text FROM pg_namespace WHERE nspname IN ('orderly', 'orderly_meta')").scalar
        }
        try await NIOThreadPool.singleton.runIfActive {
            let connection = try Connection(config: admin)
            defer { connection.close() }
            try connection.executeScript("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
        }
        #expect(outcome == Migrator.Failure.notUTF8("LATIN1").description)
        #expect(outcome.contains("needs a UTF8 database"))
        #expect(schemas == "0", "nothing was created")
    }

    @Test func aDatabaseFromANewerServerIsRefused() async throws {
        try await withTestDatabase { database in
            try await database.execute("INSERT INTO orderly_meta.migrations (name, kind, version, checksum) VALUES ('V999__future.sql', 'versioned', 999, 'x')")
            await #expect(throws: Migrator.Failure.unknownApplied("V999__future.sql")) {
                _ = try await Migrator(directory: TestCluster.sqlDirectory).migrate(database.config, logger: TestCluster.logger)
            }
        }
    }

    @Test func concurrentStartersMigrateExactlyOnce() async throws {
        try await withTestDatabase(migrated: false) { database in
            let migrator = try Migrator(directory: TestCluster.sqlDirectory)
            let reports = try await withThrowingTaskGroup(of: Migrator.Report.self) { group in
                for _ in 0..<4 { group.addTask { try await migrator.migrate(database.config, logger: TestCluster.logger) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(reports.map(\.applied.count).sorted() == [0, 0, 0, migrator.scripts.count])
        }
    }
}
