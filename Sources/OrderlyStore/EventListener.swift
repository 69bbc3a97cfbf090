import Foundation
import Logging
import NIOConcurrencyHelpers
import PostgresClient

#if canImport(Glibc)
import Glibc
#endif

/// The server's one LISTEN connection (docs/ARCHITECTURE.md §5), on a thread of its own because it spends
/// its life blocked in poll() on the libpq socket.
///
/// `orderly_commands` says the command registry changed (a migration ran).
/// `orderly_events` carries new notification ids: the listener reads every notification after
/// the last one it saw, and those below it that committed late (`EventCursor`), and hands them
/// on. After a lost connection it reconnects and reads from that same cursor, so nothing
/// committed meanwhile is lost. `orderly_roles` says an admin changed
/// rights; after a reconnect every session is told to re-read its rights, since such a change
/// may have been missed.
public final class EventListener: Sendable {
    public struct Handlers: Sendable {
        public init(events: @escaping @Sendable ([Event]) -> Void, commandsChanged: @escaping @Sendable () -> Void,
                    rolesChanged: @escaping @Sendable (String?) -> Void) {
            self.events = events
            self.commandsChanged = commandsChanged
            self.rolesChanged = rolesChanged
        }

        var events: @Sendable ([Event]) -> Void
        /// The command registry changed, or may have while the listener was not connected.
        var commandsChanged: @Sendable () -> Void
        /// The notification's JSON payload, or nil for "anything may have changed".
        var rolesChanged: @Sendable (String?) -> Void
    }

    private let config: ConnectionConfig
    private let handlers: Handlers
    private let logger: Logger
    private let stopRequested = NIOLockedValueBox(false)

    public init(config: ConnectionConfig, logger: Logger, handlers: Handlers) {
        self.config = config
        self.handlers = handlers
        self.logger = logger
    }

    /// Listens until the task is cancelled: the blocking work runs on a thread of its own, which
    /// notices the cancellation within a poll interval; this returns once that thread has ended.
    public func run() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (finished: CheckedContinuation<Void, Never>) in
                let thread = Thread { [self] in
                    listenUntilStopped()
                    finished.resume()
                }
                thread.name = "orderly-listen"
                thread.start()
            }
        } onCancel: {
            stopRequested.withLockedValue { $0 = true }
        }
    }

    private var isStopped: Bool { stopRequested.withLockedValue { $0 } }

    private func listenUntilStopped() {
        var cursor: EventCursor?
        var backoff = 0.1
        while !isStopped {
            do {
                let connection = try Connection(config: config)
                defer { connection.close() }
                try connection.executeScript("SET ROLE orderly_app; LISTEN orderly_events; LISTEN orderly_roles; LISTEN orderly_commands")
                // A migration may have changed the registry before LISTEN: read it again.
                handlers.commandsChanged()
                if let cursor {
                    logger.info("event listener reconnected; catching up",
                                metadata: ["after": "\(cursor.lastID)", "gaps": "\(cursor.gaps.count)"])
                    handlers.rolesChanged(nil)
                } else {
                    // LISTEN came first, so nothing committed after this point can be missed.
                    cursor = try start(on: connection)
                }
                var current = cursor!
                defer { cursor = current }
                try deliver(from: &current, on: connection)
                backoff = 0.1
                try listen(on: connection, cursor: &current)
            } catch {
                guard !isStopped else { break }
                logger.warning("event listener lost its connection; retrying", metadata: ["error": "\(error)", "in": "\(backoff)s"])
                sleep(seconds: backoff)
                backoff = min(backoff * 2, 5)
            }
        }
    }

    private func listen(on connection: Connection, cursor: inout EventCursor) throws {
        while !isStopped {
            // Notifications that arrived with our own query results are already inside libpq,
            // where poll() cannot see them: handle those before waiting for more.
            let pending = connection.drainNotifications()
            if !pending.isEmpty {
                var newEvents = false
                var commandsChanged = false
                for notification in pending {
                    switch notification.channel {
                    case "orderly_events": newEvents = true
                    case "orderly_commands": commandsChanged = true
                    default: handlers.rolesChanged(notification.payload)
                    }
                }
                // One reload for a whole migration's worth of registered commands.
                if commandsChanged { handlers.commandsChanged() }
                if newEvents { try deliver(from: &cursor, on: connection) }
                continue
            }
            var descriptor = pollfd(fd: connection.socket, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 250)
            if ready < 0 && errno != EINTR { throw PostgresError(kind: .connection, message: "poll failed") }
            if ready > 0 { try connection.consumeInput() }
        }
    }

    /// The newest id, and the ids missing just below it (a transaction still running may hold one).
    private func start(on connection: Connection) throws -> EventCursor {
        let row = try connection.query("SELECT last_id, gaps::text, gap_horizon FROM api.event_start()").rows.first
        let lastID = row?[0].flatMap { Int64($0) } ?? 0
        let horizon = row?[2].flatMap { UInt64($0) } ?? 0
        var gaps: [Int64: UInt64] = [:]
        for id in (row?[1] ?? "{}").trimmingCharacters(in: CharacterSet(charactersIn: "{}")).split(separator: ",") {
            if let id = Int64(id) { gaps[id] = horizon }
        }
        return EventCursor(lastID: lastID, gaps: gaps)
    }

    /// Reads and hands on every new notification, batch by batch, advancing the cursor after each,
    /// so that a connection lost half-way resumes after the last batch handed on.
    private func deliver(from cursor: inout EventCursor, on connection: Connection) throws {
        let batchSize = 500
        while true {
            let gapList = "{" + cursor.gapIDs.map(String.init).joined(separator: ",") + "}"
            let rows = try connection.query("""
                SELECT snapshot_xmin, gap_horizon, id, kind, recipient_user_id, recipient_role, event
                FROM api.event_feed($1::bigint, $2::bigint[], \(batchSize))
                """, [String(cursor.lastID), gapList]).rows
            guard let first = rows.first, let xmin = first[0].flatMap({ UInt64($0) }) else {
                throw PostgresError(kind: .query, message: "api.event_feed returned no snapshot")
            }
            let events = rows.compactMap { row -> Event? in
                guard let id = row[2].flatMap({ Int64($0) }), let kind = row[3], let json = row[6] else { return nil }
                return Event(id: id, kind: kind, userId: row[4].flatMap { Int64($0) }, role: row[5], json: json)
            }
            let full = events.count >= batchSize
            let batch = EventCursor.Batch(snapshotXmin: xmin, gapHorizon: first[1].flatMap { UInt64($0) }, events: events, full: full)
            let (fresh, givenUp) = try cursor.apply(batch)
            if givenUp > 0 {
                logger.warning("event listener gave up waiting for old notification ids", metadata: ["count": "\(givenUp)"])
            }
            if !fresh.isEmpty { handlers.events(fresh) }
            if !full { return }
        }
    }

    private func sleep(seconds: Double) {
        var remaining = seconds
        while remaining > 0 && !isStopped {
            usleep(100_000)
            remaining -= 0.1
        }
    }
}
