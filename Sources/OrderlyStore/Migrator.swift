import Foundation
import Logging
import NIOPosix
import PostgresClient

/// Applies `sql/` to a database (docs/ARCHITECTURE.md §6): `V###__name.sql` once each in version order,
/// then `R__name.sql` whenever its content changed, each file in its own transaction, recorded
/// with a checksum in `orderly_meta.migrations`, all under an advisory lock so that several
/// servers starting at once migrate exactly once.
public struct Migrator: Sendable {
    public struct Script: Sendable, Equatable {
        public enum Kind: String, Sendable { case versioned, repeatable }
        public let name: String
        public let kind: Kind
        public let version: Int?
        public let sql: String

        /// A file that must not run as orderly_owner (it creates roles, schemas, extensions) says
        /// so with this line; every other file runs under `SET LOCAL ROLE orderly_owner`.
        public static let runAsLoginMarker = "-- orderly:run-as-login"

        public var runsAsLogin: Bool {
            sql.split(separator: "\n", omittingEmptySubsequences: false).contains { $0.trimmingCharacters(in: .whitespaces) == Script.runAsLoginMarker }
        }
    }

    public struct Report: Sendable, Equatable {
        /// File names applied by this run, in order; empty when the database was current.
        public var applied: [String] = []
    }

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case changedAfterApply(String)
        case unknownApplied(String)
        case duplicateVersion(Int)
        case scriptFailed(String, String)
        case noScripts(String)
        case unrecognisedFile(String)
        case outOfOrder(String, appliedUpTo: Int)
        case notUTF8(String)

        public var description: String {
            switch self {
            case .changedAfterApply(let name):
                return "migration \(name) was changed after it was applied; versioned migrations are immutable — restore it and add a new V file"
            case .unknownApplied(let name):
                return "the database has migration \(name), which this orderlyd does not have: it was migrated by a newer version"
            case .duplicateVersion(let version): return "two migration files have version \(version)"
            case .scriptFailed(let name, let message): return "migration \(name) failed: \(message)"
            case .noScripts(let directory): return "no migration files in \(directory)"
            case .unrecognisedFile(let name):
                return "\(name) is not a migration name: use V<number>__<name>.sql or R__<name>.sql"
            case .outOfOrder(let name, let version):
                return "\(name) is older than V\(version), which is already applied; give it a version above \(version)"
            case .notUTF8(let encoding):
                return "the database's encoding is \(encoding); Orderly needs a UTF8 database (CREATE DATABASE … ENCODING 'UTF8' TEMPLATE template0)"
            }
        }
    }

    /// Arbitrary but fixed: "orderly" in ASCII (0x6f726465726c79), as one advisory lock key.
    static let lockKey = "31369497939176569"

    public let scripts: [Script]

    public init(directory: String) throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        var scripts: [Script] = []
        var versions = Set<Int>()
        for name in names where name.hasSuffix(".sql") {
            // Line endings are part of no migration's meaning: a checkout with CRLF must not
            // look like an edited file.
            let sql = try String(contentsOfFile: directory + "/" + name, encoding: .utf8).replacingOccurrences(of: "\r\n", with: "\n")
            if name.hasPrefix("R__"), name.count > "R__.sql".count {
                scripts.append(Script(name: name, kind: .repeatable, version: nil, sql: sql))
            } else if let version = Migrator.version(of: name) {
                guard versions.insert(version).inserted else { throw Failure.duplicateVersion(version) }
                scripts.append(Script(name: name, kind: .versioned, version: version, sql: sql))
            } else {
                throw Failure.unrecognisedFile(name)
            }
        }
        guard !scripts.isEmpty else { throw Failure.noScripts(directory) }
        self.scripts = scripts.filter { $0.kind == .versioned }.sorted { $0.version! < $1.version! }
            + scripts.filter { $0.kind == .repeatable }
    }

    /// The number in `V<number>__<name>.sql`, or nil for any other name.
    static func version(of name: String) -> Int? {
        guard name.hasPrefix("V"), let separator = name.range(of: "__"),
              name[separator.upperBound...].count > ".sql".count else { return nil }
        let digits = name[name.index(after: name.startIndex)..<separator.lowerBound]
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else { return nil }
        return Int(digits)
    }

    /// Migrates on a connection of its own, on a thread that may block.
    public func migrate(_ config: ConnectionConfig, logger: Logger) async throws -> Report {
        try await NIOThreadPool.singleton.runIfActive {
            let connection = try Connection(config: config)
            defer { connection.close() }
            return try self.migrate(on: connection, logger: logger)
        }
    }

    /// Blocking; see `migrate(_:logger:)`.
    public func migrate(on connection: Connection, logger: Logger) throws -> Report {
        // Replies pass PostgreSQL's text on to clients as it comes, asked for in UTF-8 (the
        // protocol's): a database in another encoding would have to convert it, and could not hold
        // every character a client sends (SQL_ASCII would not even check it).
        let encoding = try connection.queryOnce("SELECT current_setting('server_encoding')").scalar ?? "unknown"
        guard encoding == "UTF8" else { throw Failure.notUTF8(encoding) }
        try connection.queryOnce("SELECT pg_advisory_lock(\(Migrator.lockKey))")
        defer { _ = try? connection.queryOnce("SELECT pg_advisory_unlock(\(Migrator.lockKey))") }
        try connection.executeScript("""
            CREATE SCHEMA IF NOT EXISTS orderly_meta;
            CREATE TABLE IF NOT EXISTS orderly_meta.migrations (
                name        text PRIMARY KEY,
                kind        text NOT NULL CHECK (kind IN ('versioned', 'repeatable')),
                version     int UNIQUE,
                checksum    text NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now(),
                duration_ms int NOT NULL DEFAULT 0
            );
            """)
        let rows = try connection.queryOnce("SELECT name, checksum FROM orderly_meta.migrations")
        var applied: [String: String] = [:]
        for row in rows.rows { applied[row[0]!] = row[1]! }

        let known = Set(scripts.map(\.name))
        if let stranger = applied.keys.sorted().first(where: { !known.contains($0) && $0.hasPrefix("V") }) {
            throw Failure.unknownApplied(stranger)
        }
        let newestApplied = scripts.filter { $0.kind == .versioned && applied[$0.name] != nil }.compactMap(\.version).max() ?? 0
        if let late = scripts.first(where: { $0.kind == .versioned && applied[$0.name] == nil && $0.version! < newestApplied }) {
            throw Failure.outOfOrder(late.name, appliedUpTo: newestApplied)
        }
        var report = Report()
        for script in scripts {
            let checksum = try connection.query("SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex')", [script.sql]).scalar!
            switch (script.kind, applied[script.name]) {
            case (_, let stored?) where stored == checksum:
                continue
            case (.versioned, _?):
                throw Failure.changedAfterApply(script.name)
            default:
                try apply(script, checksum: checksum, on: connection, logger: logger)
                report.applied.append(script.name)
            }
        }
        return report
    }

    private func apply(_ script: Script, checksum: String, on connection: Connection, logger: Logger) throws {
        let started = Date()
        do {
            try connection.executeScript("BEGIN")
            // Objects belong to orderly_owner, not to whoever happens to run the migration.
            if !script.runsAsLogin { try connection.executeScript("SET LOCAL ROLE orderly_owner") }
            try connection.executeScript(script.sql)
            guard !connection.isIdleOutsideTransaction else {
                throw Failure.scriptFailed(script.name, "a migration must not COMMIT or ROLLBACK; the migrator runs each file in one transaction")
            }
            try connection.executeScript("RESET ROLE")
            let milliseconds = Int(Date().timeIntervalSince(started) * 1000)
            try connection.queryOnce("""
                INSERT INTO orderly_meta.migrations (name, kind, version, checksum, duration_ms)
                VALUES ($1, $2, $3::int, $4, $5::int)
                ON CONFLICT (name) DO UPDATE SET checksum = excluded.checksum, applied_at = now(), duration_ms = excluded.duration_ms
                """, [script.name, script.kind.rawValue, script.version.map(String.init), checksum, String(milliseconds)])
            try connection.executeScript("COMMIT")
            logger.info("applied migration", metadata: ["file": "\(script.name)", "ms": "\(milliseconds)"])
        } catch let error as PostgresError {
            _ = try? connection.executeScript("ROLLBACK")
            throw Failure.scriptFailed(script.name, error.description)
        } catch {
            _ = try? connection.executeScript("ROLLBACK")
            throw error
        }
    }
}
