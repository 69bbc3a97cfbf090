import Foundation
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

    private struct Waiter {
        let continuation: CheckedContinuation<Slot, Error>
        let deadline: ContinuousClock.Instant
    }

    private struct State {
        var idle: [Slot]
        /// Oldest first; as every caller waits equally long, the expired ones are a prefix.
        var waiters: [Waiter] = []
        /// Whether the task that fails expired waiters is running (only while anyone waits), and
        /// that task, so that shutdown can end it and wait for it.
        var sweeping = false
        var sweeper: Task<Void, Never>?
        var closed = false
        /// The connections running a caller's work right now, to cancel their statements when
        /// the pool shuts down.
        var running: [ObjectIdentifier: Canceller] = [:]
    }

    /// How long a caller waits for a free connection before failing with `.poolTimeout`.
    public let maximumWait: Duration

    /// - Parameter setupStatements: run on every new connection before first use, e.g.
    ///   `SET ROLE orderly_app` so that the server works with the app role's rights only.
    public init(config: ConnectionConfig, size: Int, setupStatements: [String] = [], maximumWait: Duration = .seconds(10),
                logger: Logger = Logger(label: "orderly.pool")) {
        precondition(size > 0, "a pool needs at least one connection")
        self.size = size
        self.config = config
        self.setupStatements = setupStatements
        self.maximumWait = maximumWait
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
        let config = self.config, setup = self.setupStatements, logger = self.logger, state = self.state
        return try await threadPool.runIfActive {
            let connection = try ConnectionPool.usableConnection(in: slot, config: config, setup: setup, logger: logger)
            let running = state.withLockedValue { state -> Bool in
                guard !state.closed else { return false }
                state.running[ObjectIdentifier(slot)] = connection.canceller
                return true
            }
            guard running else { throw PostgresError(kind: .poolClosed, message: "the connection pool is shut down") }
            defer {
                state.withLockedValue { _ = $0.running.removeValue(forKey: ObjectIdentifier(slot)) }
                if state.withLockedValue({ $0.closed }) {
                    // The pool shut down while this ran: the slot goes nowhere, close it here.
                    connection.close()
                    slot.connection = nil
                } else if connection.isOpen && !connection.isIdleOutsideTransaction {
                    // Never hand the next caller a transaction someone else left open.
                    logger.warning("a pooled connection was returned inside a transaction; closing it")
                    connection.close()
                    slot.connection = nil
                }
            }
            do {
                return try body(connection)
            } catch var error as PostgresError where error.isConnectionFailure || !connection.isOpen {
                logger.warning("database connection lost; it will be replaced", metadata: ["error": "\(error)"])
                connection.close()
                slot.connection = nil
                error.kind = .connection
                throw error
            }
        }
    }

    /// How many connections are checked out right now.
    public var inUse: Int { state.withLockedValue { size - $0.idle.count } }

    /// How many callers are waiting for a connection.
    public var waiting: Int { state.withLockedValue { $0.waiters.count } }

    /// Fails every waiter, cancels the statements still running, closes the connections, stops
    /// the threads.
    public func shutdown() async {
        let (waiters, idle, running) = state.withLockedValue { state -> ([Waiter], [Slot], [Canceller]) in
            state.closed = true
            defer { state.waiters = []; state.idle = [] }
            return (state.waiters, state.idle, Array(state.running.values))
        }
        // Their callers get an error (57014) rather than keeping a backend busy after we are gone.
        // Sending a cancel opens a connection of its own: on a thread that may block.
        if !running.isEmpty {
            await withCheckedContinuation { (sent: CheckedContinuation<Void, Never>) in
                Thread {
                    for canceller in running { canceller.cancelRunningStatement() }
                    sent.resume()
                }.start()
            }
        }
        for waiter in waiters {
            waiter.continuation.resume(throwing: PostgresError(kind: .poolClosed, message: "the connection pool is shut down"))
        }
        let sweeper = state.withLockedValue { $0.sweeper }
        sweeper?.cancel()
        await sweeper?.value
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
            let (outcome, startSweeping): (Result<Slot, Error>?, Bool) = state.withLockedValue { state in
                if state.closed { return (.failure(PostgresError(kind: .poolClosed, message: "the connection pool is shut down")), false) }
                if let slot = state.idle.popLast() { return (.success(slot), false) }
                state.waiters.append(Waiter(continuation: continuation, deadline: .now + maximumWait))
                let startSweeping = !state.sweeping
                state.sweeping = true
                return (nil, startSweeping)
            }
            if let outcome { continuation.resume(with: outcome) }
            if startSweeping {
                let sweeper = Task { await self.sweepExpiredWaiters() }
                state.withLockedValue { $0.sweeper = sweeper }
            }
        }
    }

    /// Fails the callers that waited longer than `maximumWait`, looking a few times a second
    /// while anyone waits: one task for all of them, rather than a timer per waiting request.
    private func sweepExpiredWaiters() async {
        let tick = min(maximumWait, .milliseconds(100))
        while !Task.isCancelled {
            try? await Task.sleep(for: tick)
            let now = ContinuousClock.now
            let (expired, done): ([Waiter], Bool) = state.withLockedValue { state in
                let count = state.waiters.prefix(while: { $0.deadline <= now }).count
                let expired = Array(state.waiters.prefix(count))
                state.waiters.removeFirst(count)
                if state.waiters.isEmpty { state.sweeping = false }
                return (expired, !state.sweeping)
            }
            for waiter in expired {
                waiter.continuation.resume(throwing: PostgresError(
                    kind: .poolTimeout, message: "no database connection became free within \(maximumWait)"))
            }
            if done { return }
        }
    }

    private func release(_ slot: Slot) {
        let waiter: Waiter? = state.withLockedValue { state in
            if state.waiters.isEmpty {
                if !state.closed { state.idle.append(slot) }
                return nil
            }
            return state.waiters.removeFirst()
        }
        waiter?.continuation.resume(returning: slot)
    }
}
