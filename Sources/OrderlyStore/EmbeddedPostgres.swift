import Foundation
import Logging
import NIOConcurrencyHelpers
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
        case unreachable(String)
        case unsafePath(String)
        case claimed(String)

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
            case .unsafePath(let path):
                return "the data folder path \(path) may hold only letters, digits and / . _ -"
            case .claimed(let path):
                return "another orderlyd (a server, or orderlyd migrate) is using the data folder \(path) (it holds \(path).orderlyd.lock); stop it first, or give this one a --data-dir of its own or a --database-url"
            case .unreachable(let path):
                return "the postgres user cannot reach \(path) (a parent folder such as /root is closed to it); pass --data-dir in a folder it can reach, e.g. /var/lib/orderly/pgdata"
            }
        }
    }

    public let dataDirectory: String
    public let databaseName: String
    private let binDirectory: String
    private let logger: Logger
    private let asPostgresUser: Bool
    /// The open lock file while this process serves the folder (claim()).
    private let claimDescriptor = NIOLockedValueBox<Int32?>(nil)

    public init(dataDirectory: String, databaseName: String = "orderly", binDirectory: String? = nil, logger: Logger) throws {
        self.dataDirectory = URL(fileURLWithPath: dataDirectory).standardizedFileURL.path
        self.databaseName = databaseName
        guard let bin = binDirectory ?? EmbeddedPostgres.findBinaries() else { throw Failure.binariesNotFound }
        self.binDirectory = bin
        self.logger = logger
        self.asPostgresUser = geteuid() == 0
        if asPostgresUser, getpwnam("postgres") == nil { throw Failure.noPostgresUser }
        guard (self.dataDirectory + "/.s.PGSQL.5432").utf8.count < 100 else { throw Failure.socketPathTooLong(self.dataDirectory) }
        // The path goes into postgresql.conf and a pg_ctl option string: keep it to characters
        // that need no quoting in either.
        guard self.dataDirectory.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType != nil || "/._-".unicodeScalars.contains($0)) }) else {
            throw Failure.unsafePath(self.dataDirectory)
        }
    }

    deinit {
        // Unlocked before it is closed: a child forked meanwhile (a test or the server starting a
        // process) shares the descriptor until it execs, and a close alone left the lock held
        // through that copy, so the folder looked taken a moment after it was given up.
        if let descriptor = claimDescriptor.withLockedValue({ $0 }) {
            flock(descriptor, LOCK_UN)
            close(descriptor)
        }
    }

    /// Makes this process the folder's one user until it ends (a server, or orderlyd migrate): an
    /// exclusive flock on a file beside the folder. Each stops the cluster when done if it found
    /// it stopped (a server also one found running after a crash), so a second one on the folder
    /// could take the database away from the first, or run initdb beside it; it is refused. The
    /// kernel drops the lock when the process ends, a crash included, and the descriptor is not
    /// inherited (O_CLOEXEC), so the postmaster never holds it.
    public func claim() throws {
        // The folder as the file system knows it: a symlink to it, or a path through one, is
        // the same folder and must find the same lock. Its parent exists from here on, so that
        // a symlink among the parents resolves even before initdb made the folder.
        let folder = URL(fileURLWithPath: dataDirectory)
        let parent = folder.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
        let resolved = parent.resolvingSymlinksInPath().appendingPathComponent(folder.lastPathComponent).resolvingSymlinksInPath()
        let path = resolved.path + ".orderlyd.lock"
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw Failure.commandFailed("open \(path)", errno, String(cString: strerror(errno)))
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw Failure.claimed(resolved.path)
        }
        claimDescriptor.withLockedValue { $0 = descriptor }
    }

    /// How to reach the cluster's `orderly` database as its superuser.
    public var connectionConfig: ConnectionConfig {
        ConnectionConfig(url: "host=\(dataDirectory) port=5432 user=postgres dbname=\(databaseName)")
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
            // The private settings again on the command line, so that they hold even if
            // postgresql.conf was edited: no TCP, the socket only inside the data folder.
            try run("pg_ctl", ["-D", dataDirectory, "-l", dataDirectory + "/postgres.log", "-w", "-t", "60",
                               "-o", "-c listen_addresses= -k \(dataDirectory) -p 5432", "start"])
        } else {
            logger.info("embedded PostgreSQL already running", metadata: ["data": "\(dataDirectory)"])
        }
        do {
            try createDatabaseIfMissing()
        } catch {
            if started { stop() }
            throw error
        }
        return started
    }

    /// The login orderlyd serves with: a member of orderly_app and nothing more, so that even a
    /// `RESET ROLE` could not make a pooled connection a superuser. Call after migrating.
    public func serverLoginConfig() throws -> ConnectionConfig {
        let connection = try Connection(config: connectionConfig)
        defer { connection.close() }
        try connection.executeScript("""
            DO $$ BEGIN
                IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'orderlyd_server') THEN
                    CREATE ROLE orderlyd_server LOGIN IN ROLE orderly_app;
                END IF;
            END $$
            """)
        return ConnectionConfig(url: "host=\(dataDirectory) port=5432 user=orderlyd_server dbname=\(databaseName)")
    }

    /// Fast shutdown: sessions are disconnected, data is flushed.
    public func stop() {
        _ = try? run("pg_ctl", ["-D", dataDirectory, "-m", "fast", "-w", "-t", "60", "stop"], allowFailure: true)
    }

    // MARK: - Internals

    /// Builds the cluster in a temporary folder and renames it into place only when it is
    /// complete, so that a crash half-way never leaves a data folder without its settings.
    private func initialise() throws {
        logger.info("creating embedded PostgreSQL cluster", metadata: ["data": "\(dataDirectory)"])
        let building = dataDirectory + ".initdb"
        try? FileManager.default.removeItem(atPath: building)
        // Parents with ordinary permissions (the postgres user must pass through them); only
        // the data folder itself is private.
        let parent = URL(fileURLWithPath: dataDirectory).deletingLastPathComponent().path
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: building, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o700])
        if asPostgresUser {
            guard let user = getpwnam("postgres") else { throw Failure.noPostgresUser }
            guard chown(building, user.pointee.pw_uid, user.pointee.pw_gid) == 0 else {
                throw Failure.commandFailed("chown \(building)", errno, "cannot give the data folder to the postgres user")
            }
            let reachable = try ChildProcess.run("/usr/sbin/runuser", ["-u", "postgres", "--", "/usr/bin/test", "-w", building]).status
            guard reachable == 0 else { throw Failure.unreachable(dataDirectory) }
        }
        // Local (socket) connections are trusted: the socket lives in the 0700 data folder.
        // TCP is refused outright, and not listened on either.
        try run("initdb", ["-D", building, "-U", "postgres", "--auth-local=trust", "--auth-host=reject",
                           "-E", "UTF8", "--locale=C", "--no-instructions"])
        let settings = """

            # Written by orderlyd: a private cluster reachable only through its own socket.
            listen_addresses = ''
            unix_socket_directories = '\(dataDirectory)'
            port = 5432
            """
        // Appending keeps the file's owner, so this works as root for a postgres-owned cluster.
        let file = try FileHandle(forWritingTo: URL(fileURLWithPath: building + "/postgresql.conf"))
        try file.seekToEnd()
        try file.write(contentsOf: Data((settings + "\n").utf8))
        try file.close()
        try FileManager.default.moveItem(atPath: building, toPath: dataDirectory)
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
        let executable = binDirectory + "/" + tool
        // As postgres, start in "/": that user may not be allowed into our working directory.
        let (program, programArguments) = asPostgresUser
            ? ("/usr/sbin/runuser", ["-u", "postgres", "--", "/usr/bin/env", "-C", "/", executable] + arguments)
            : (executable, arguments)
        let (status, output) = try ChildProcess.run(program, programArguments)
        if status != 0 && !allowFailure {
            throw Failure.commandFailed(tool, status, output.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return status
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
