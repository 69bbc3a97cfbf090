import Foundation
import Logging
import PostgresClient

/// A private PostgreSQL cluster in a data folder of its own: created on first use (initdb),
/// started with pg_ctl, reachable only through a Unix socket inside that folder (no TCP port),
/// stopped cleanly. As root, the cluster runs as the `postgres` user, as PostgreSQL requires.
public final class EmbeddedPostgres: Sendable {
    public enum Failure: Error, CustomStringConvertible {
        case binariesNotFound
        case commandFailed(String, Int32, String)
        case socketPathTooLong(String)
        case noPostgresUser

        public var description: String {
            switch self {
            case .binariesNotFound:
                return "PostgreSQL server binaries (initdb, pg_ctl) not found; install them (Debian: apt-get install postgresql) or pass --pg-bin-dir"
            case .commandFailed(let command, let status, let output):
                return "\(command) failed (exit \(status)): \(output)"
            case .socketPathTooLong(let path):
                return "the data folder path is too long for a Unix socket (\(path)); choose a shorter --data-dir"
            case .noPostgresUser:
                return "running as root needs the 'postgres' system user to own the cluster (it comes with Debian's postgresql package)"
            }
        }
    }

    public let dataDirectory: String
    public let databaseName: String
    private let binDirectory: String
    private let logger: Logger
    private let asPostgresUser: Bool

    public init(dataDirectory: String, databaseName: String = "orderly", binDirectory: String? = nil, logger: Logger) throws {
        self.dataDirectory = URL(fileURLWithPath: dataDirectory).standardizedFileURL.path
        self.databaseName = databaseName
        guard let bin = binDirectory ?? EmbeddedPostgres.findBinaries() else { throw Failure.binariesNotFound }
        self.binDirectory = bin
        self.logger = logger
        self.asPostgresUser = geteuid() == 0
        if asPostgresUser, getpwnam("postgres") == nil { throw Failure.noPostgresUser }
        guard (self.dataDirectory + "/.s.PGSQL.5432").utf8.count < 100 else { throw Failure.socketPathTooLong(self.dataDirectory) }
    }

    /// How to reach the cluster's `orderly` database as its superuser.
    public var connectionConfig: ConnectionConfig {
        ConnectionConfig(url: "host=\(EmbeddedPostgres.quoted(dataDirectory)) port=5432 user=postgres dbname=\(databaseName)")
    }

    /// Creates the cluster if needed, starts it if not running, and creates the database.
    /// Returns false when the cluster was already running (someone else will stop it).
    @discardableResult
    public func start() throws -> Bool {
        if !FileManager.default.fileExists(atPath: dataDirectory + "/PG_VERSION") {
            try initialise()
        }
        let started = try run("pg_ctl", ["-D", dataDirectory, "status"], allowFailure: true) != 0
        if started {
            logger.info("starting embedded PostgreSQL", metadata: ["data": "\(dataDirectory)"])
            try run("pg_ctl", ["-D", dataDirectory, "-l", dataDirectory + "/postgres.log", "-w", "-t", "60", "start"])
        } else {
            logger.info("embedded PostgreSQL already running", metadata: ["data": "\(dataDirectory)"])
        }
        try createDatabaseIfMissing()
        return started
    }

    /// Fast shutdown: sessions are disconnected, data is flushed.
    public func stop() {
        _ = try? run("pg_ctl", ["-D", dataDirectory, "-m", "fast", "-w", "-t", "60", "stop"], allowFailure: true)
    }

    // MARK: - Internals

    private func initialise() throws {
        logger.info("creating embedded PostgreSQL cluster", metadata: ["data": "\(dataDirectory)"])
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        if asPostgresUser {
            guard let user = getpwnam("postgres") else { throw Failure.noPostgresUser }
            guard chown(dataDirectory, user.pointee.pw_uid, user.pointee.pw_gid) == 0 else {
                throw Failure.commandFailed("chown \(dataDirectory)", errno, "cannot give the data folder to the postgres user")
            }
        }
        // Trust is safe here: there is no TCP listener and the socket lives in the 0700 data folder.
        try run("initdb", ["-D", dataDirectory, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-instructions"])
        let settings = """

            # Written by orderlyd: a private cluster reachable only through its own socket.
            listen_addresses = ''
            unix_socket_directories = '\(dataDirectory.replacingOccurrences(of: "'", with: "''"))'
            port = 5432
            """
        // Appending keeps the file's owner, so this works as root for a postgres-owned cluster.
        let file = try FileHandle(forWritingTo: URL(fileURLWithPath: dataDirectory + "/postgresql.conf"))
        defer { try? file.close() }
        try file.seekToEnd()
        try file.write(contentsOf: Data((settings + "\n").utf8))
    }

    private func createDatabaseIfMissing() throws {
        let connection = try Connection(config: connectionConfig.with(database: "postgres"))
        defer { connection.close() }
        let exists = try connection.queryOnce("SELECT 1 FROM pg_database WHERE datname = $1", [databaseName]).count > 0
        if !exists {
            // CREATE DATABASE takes no parameters; the name is a fixed identifier, quoted by PostgreSQL.
            let statement = try connection.queryOnce("SELECT format('CREATE DATABASE %I', $1::text)", [databaseName]).scalar!
            try connection.executeScript(statement)
        }
    }

    @discardableResult
    private func run(_ tool: String, _ arguments: [String], allowFailure: Bool = false) throws -> Int32 {
        let process = Process()
        let executable = binDirectory + "/" + tool
        if asPostgresUser {
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
            process.arguments = ["-u", "postgres", "--", executable] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        }
        // The postgres user may not be allowed into our working directory.
        process.currentDirectoryURL = URL(fileURLWithPath: "/")
        // A file, not a pipe: the postmaster that `pg_ctl start` leaves running inherits the
        // descriptor, and a pipe would never reach end-of-file.
        let outputPath = NSTemporaryDirectory() + "orderlyd-\(getpid())-\(tool).out"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        process.standardOutput = output
        process.standardError = output
        try process.run()
        process.waitUntilExit()
        try? output.close()
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        if process.terminationStatus != 0 && !allowFailure {
            throw Failure.commandFailed(tool, process.terminationStatus, text.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return process.terminationStatus
    }

    private static func quoted(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
    }

    /// `pg_config --bindir` is not always the server's; look where Debian puts each major version.
    static func findBinaries() -> String? {
        var candidates: [String] = []
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? [])
            .compactMap(Int.init).sorted(by: >)
        candidates += versions.map { "/usr/lib/postgresql/\($0)/bin" }
        candidates += (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0 + "/initdb") && FileManager.default.isExecutableFile(atPath: $0 + "/pg_ctl") }
    }
}
