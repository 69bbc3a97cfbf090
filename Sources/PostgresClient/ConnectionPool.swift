import Logging
import NIOConcurrencyHelpers
import NIOPosix

/// A fixed number of connections, each used by one caller at a time.
///
/// Every libpq call runs on the pool's own `NIOThreadPool` (one thread per connection), so a slow
/// query never blocks an event loop or Swift's cooperative threads. Connections are opened lazily;
/// one found broken is closed, and the next caller that gets its slot opens a fresh one.
public final class ConnectionPool: Sendable {
    public let size: Int
    private let config: ConnectionConfig
    private let setupStatements: [String]
    private let threadPool: NIOThreadPool
    private let logger: Logger
    private let state: NIOLockedValueBox<State>

    /// A place for one connection; `connection` is nil until first use or after it broke.
    private final class Slot: @unchecked Sendable {
        var connection: Connection?
    }

    private struct State {
        var idle: [Slot]
        var waiters: [CheckedContinuation<Slot, Error>] = []
        var closed = false
    }

    /// - Parameter setupStatements: run on every new connection before first use, e.g.
    ///   `SET ROLE orderly_app` so that the server works with the app role's rights only.
    public init(config: ConnectionConfig, size: Int, setupStatements: [String] = [], logger: Logger = Logger(label: "orderly.pool")) {
        precondition(size > 0, "a pool needs at least one connection")
        self.size = size
        self.config = config
        self.setupStatements = setupStatements
        self.logger = logger
        self.threadPool = NIOThreadPool(numberOfThreads: size)
        self.threadPool.start()
        self.state = NIOLockedValueBox(State(idle: (0..<size).map { _ in Slot() }))
    }

    /// Runs `body` with a connection of its own, on a thread that may block. A connection failure
    /// closes that connection so that the next use reconnects.
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        let slot = try await acquire()
        defer { release(slot) }
        let config = self.config, setup = self.setupStatements, logger = self.logger
        return try await threadPool.runIfActive {
            let connection = try ConnectionPool.usableConnection(in: slot, config: config, setup: setup, logger: logger)
            do {
                return try body(connection)
            } catch let error as PostgresError where error.isConnectionFailure || !connection.isOpen {
                logger.warning("database connection lost; it will be replaced", metadata: ["error": "\(error)"])
                connection.close()
                slot.connection = nil
                throw PostgresError(kind: .connection, sqlState: error.sqlState, message: error.message, hint: error.hint)
            }
        }
    }

    /// How many connections are checked out right now.
    public var inUse: Int { state.withLockedValue { size - $0.idle.count } }

    /// How many callers are waiting for a connection.
    public var waiting: Int { state.withLockedValue { $0.waiters.count } }

    /// Fails every waiter, closes the connections, stops the threads.
    public func shutdown() async {
        let (waiters, idle) = state.withLockedValue { state -> ([CheckedContinuation<Slot, Error>], [Slot]) in
            state.closed = true
            defer { state.waiters = []; state.idle = [] }
            return (state.waiters, state.idle)
        }
        waiters.forEach { $0.resume(throwing: PostgresError(kind: .poolClosed, message: "the connection pool is shut down")) }
        try? await threadPool.runIfActive { idle.forEach { $0.connection?.close(); $0.connection = nil } }
        try? await threadPool.shutdownGracefully()
    }

    // MARK: - Internals

    private static func usableConnection(in slot: Slot, config: ConnectionConfig, setup: [String], logger: Logger) throws -> Connection {
        if let connection = slot.connection {
            if connection.isAliveWhileIdle() { return connection }
            logger.info("replacing a database connection that closed while idle")
            connection.close()
            slot.connection = nil
        }
        let connection = try Connection(config: config)
        for statement in setup { try connection.executeScript(statement) }
        slot.connection = connection
        return connection
    }

    private func acquire() async throws -> Slot {
        try await withCheckedThrowingContinuation { continuation in
            let action: Result<Slot, Error>? = state.withLockedValue { state in
                if state.closed { return .failure(PostgresError(kind: .poolClosed, message: "the connection pool is shut down")) }
                if let slot = state.idle.popLast() { return .success(slot) }
                state.waiters.append(continuation)
                return nil
            }
            if let action { continuation.resume(with: action) }
        }
    }

    private func release(_ slot: Slot) {
        let waiter: CheckedContinuation<Slot, Error>? = state.withLockedValue { state in
            if state.waiters.isEmpty {
                state.idle.append(slot)
                return nil
            }
            return state.waiters.removeFirst()
        }
        waiter?.resume(returning: slot)
    }
}
