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
/// the last one it saw and hands them on. After a lost connection it reconnects and reads from
/// that same id, so nothing committed meanwhile is lost. `orderly_roles` says an admin changed
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
        var lastSeen: Int64?
        var backoff = 0.1
        while !isStopped {
            do {
                let connection = try Connection(config: config)
                defer { connection.close() }
                try connection.executeScript("SET ROLE orderly_app; LISTEN orderly_events; LISTEN orderly_roles; LISTEN orderly_commands")
                // A migration may have changed the registry before LISTEN: read it again.
                handlers.commandsChanged()
                if let lastSeen {
                    logger.info("event listener reconnected; catching up", metadata: ["after": "\(lastSeen)"])
                    handlers.rolesChanged(nil)
                } else {
                    // LISTEN came first, so nothing committed after this id can be missed.
                    lastSeen = Int64(try connection.query("SELECT api.last_event_id()").scalar ?? "0") ?? 0
                }
                var seen = lastSeen!
                defer { lastSeen = seen }
                try deliver(after: &seen, on: connection)
                backoff = 0.1
                try listen(on: connection, lastSeen: &seen)
            } catch {
                guard !isStopped else { break }
                logger.warning("event listener lost its connection; retrying", metadata: ["error": "\(error)", "in": "\(backoff)s"])
                sleep(seconds: backoff)
                backoff = min(backoff * 2, 5)
            }
        }
    }

    private func listen(on connection: Connection, lastSeen: inout Int64) throws {
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
                if newEvents { try deliver(after: &lastSeen, on: connection) }
                continue
            }
            var descriptor = pollfd(fd: connection.socket, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 250)
            if ready < 0 && errno != EINTR { throw PostgresError(kind: .connection, message: "poll failed") }
            if ready > 0 { try connection.consumeInput() }
        }
    }

    /// Reads and hands on every notification after `last`, advancing it batch by batch, so that
    /// a connection lost half-way resumes after the last batch handed on, not before it.
    private func deliver(after last: inout Int64, on connection: Connection) throws {
        while true {
            // The pushed object is the INBOX row: routing fields out, `read` in.
            let rows = try connection.query("""
                SELECT e->>'id', e->>'kind', e->>'recipient_user_id', e->>'recipient_role',
                       ((e::jsonb - 'recipient_user_id' - 'recipient_role') || '{"read": false}')::text
                FROM api.events_since($1::bigint, 500) AS e
                """, [String(last)]).rows
            let events = rows.compactMap { row -> Event? in
                guard let id = row[0].flatMap({ Int64($0) }), let kind = row[1], let json = row[4] else { return nil }
                return Event(id: id, kind: kind, userId: row[2].flatMap { Int64($0) }, role: row[3], json: json)
            }
            if !events.isEmpty { handlers.events(events) }
            last = events.last?.id ?? last
            if rows.count < 500 { return }
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
