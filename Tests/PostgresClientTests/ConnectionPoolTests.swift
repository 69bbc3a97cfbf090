import Foundation
import OrderlyTestSupport
import PostgresClient
import Testing

@Suite struct ConnectionPoolTests {
    @Test func runsUpToItsSizeAtOnceAndQueuesTheRest() async throws {
        try await withTestDatabase(migrated: false) { database in
            let pool = ConnectionPool(config: database.config, size: 3)
            let running = Running()
            let started = Date()
            // Six 0.3 s sleeps on three connections: two rounds, so about 0.6 s, never 0.3 s. The
            // first three to get a connection wait for each other before sleeping, so that three
            // run at once however late a busy machine starts some of the tasks.
            let pids = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        try await pool.withConnection { connection in
                            let first = running.enter()
                            defer { running.leave() }
                            if first { running.waitForPeak(3, seconds: 30) }
                            return try connection.query("SELECT pg_backend_pid()::text FROM pg_sleep(0.3)").scalar!
                        }
                    }
                }
                return try await group.reduce(into: Set<String>()) { $0.insert($1) }
            }
            #expect(running.peak == 3, "three at once")
            #expect(pids.count == 3, "no more connections than the pool's size")
            #expect(Date().timeIntervalSince(started) >= 0.55)
            #expect(pool.inUse == 0)
            await pool.shutdown()
        }
    }

    /// How many pooled connections are in use at once, and the most there were.
    final class Running: @unchecked Sendable {
        private let lock = NSCondition()
        private var now = 0
        private var entered = 0
        private var most = 0

        var peak: Int {
            lock.lock(); defer { lock.unlock() }
            return most
        }

        /// Counts one more in use; true for the first three to enter (the first round).
        func enter() -> Bool {
            lock.lock(); defer { lock.unlock() }
            now += 1
            entered += 1
            most = max(most, now)
            lock.broadcast()
            return entered <= 3
        }

        func leave() {
            lock.lock(); defer { lock.unlock() }
            now -= 1
        }

        /// Waits until `count` are in use at once (or the time is up: the test then fails on peak).
        func waitForPeak(_ count: Int, seconds: Double) {
            let deadline = Date().addingTimeInterval(seconds)
            lock.lock(); defer { lock.unlock() }
            while most < count && lock.wait(until: deadline) {}
        }
    }

    @Test func setupStatementsRunOnEveryNewConnection() async throws {
        try await withTestDatabase(migrated: false) { database in
            let pool = ConnectionPool(config: database.config, size: 1, setupStatements: ["SET application_name = 'pool-setup-test'"])
            let name = try await pool.withConnection { try $0.query("SELECT current_setting('application_name')").scalar }
            #expect(name == "pool-setup-test")
            await pool.shutdown()
        }
    }

    @Test func aBrokenConnectionIsReplacedOnNextUse() async throws {
        try await withTestDatabase(migrated: false) { database in
            let pool = ConnectionPool(config: database.config, size: 1)
            let first = try await pool.withConnection { try $0.query("SELECT pg_backend_pid()::text").scalar! }
            // Kill the pooled backend from outside, as a server restart or an admin would.
            try await database.execute("SELECT pg_terminate_backend($1::int)", [first])
            // Gone for sure before the pool is used again (a fixed pause could be too short).
            for _ in 0..<600 {
                if try await database.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int", [first]).scalar == "0" { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            let second = try await pool.withConnection { try $0.query("SELECT pg_backend_pid()::text").scalar! }
            #expect(second != first)
            await pool.shutdown()
        }
    }

    @Test func aConnectionLostMidQueryFailsThatQueryOnlyAndIsReplaced() async throws {
        try await withTestDatabase(migrated: false) { database in
            let pool = ConnectionPool(config: database.config, size: 1)
            let pid = try await pool.withConnection { try $0.query("SELECT pg_backend_pid()::text").scalar! }
            // Killed once it is really running the query (however slow the machine), and the query
            // is far longer than any delay, so the kill always comes first.
            async let killer: Void = {
                for _ in 0..<600 {
                    let running = try await database.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int AND state = 'active' AND query LIKE '%pg_sleep%'", [pid])
                    if running.scalar == "1" { break }
                    try await Task.sleep(for: .milliseconds(50))
                }
                try await database.execute("SELECT pg_terminate_backend($1::int)", [pid])
            }()
            await #expect(throws: PostgresError.self) {
                _ = try await pool.withConnection { try $0.query("SELECT pg_sleep(60)") }
            }
            try await killer
            let after = try await pool.withConnection { try $0.query("SELECT 1").scalar }
            #expect(after == "1")
            await pool.shutdown()
        }
    }

    @Test func aShutDownPoolRefusesWork() async throws {
        try await withTestDatabase(migrated: false) { database in
            let pool = ConnectionPool(config: database.config, size: 1)
            await pool.shutdown()
            await #expect(throws: PostgresError.self) { _ = try await pool.withConnection { try $0.query("SELECT 1") } }
        }
    }
}
