import Foundation
import NIOConcurrencyHelpers
import OrderlyClient
import OrderlyTestSupport
import Testing

/// The real `orderlyd` executable, started as its own process against a test database.
final class Daemon: Sendable {
    let process: BackgroundProgram
    let port: Int

    /// Next to the test bundle: `swift build --build-tests` builds both into one folder.
    static var executable: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("orderlyd").path
    }

    init(database: TestDatabase, arguments: [String] = []) async throws {
        guard FileManager.default.isExecutableFile(atPath: Daemon.executable) else {
            throw TestFailure("build orderlyd first (swift build --build-tests): \(Daemon.executable)")
        }
        let process = try await BackgroundProgram(
            Daemon.executable,
            ["--database-url", Daemon.url(database), "--listen", "127.0.0.1:0", "--log-level", "warning", "--skip-migrations"] + arguments,
            log: TemporaryFiles.path("orderlyd-test", suffix: ".out"))
        var found: Int?
        for _ in 0..<200 where found == nil && process.isRunning {
            try await Task.sleep(for: .milliseconds(50))
            found = process.output.firstMatch(of: /listening on 127\.0\.0\.1:(\d+)/).flatMap { Int($0.1) }
        }
        guard let found else {
            await process.stop()
            throw TestFailure("orderlyd did not start: " + process.output)
        }
        self.process = process
        port = found
    }

    var log: String { process.output }

    /// The test database as a conninfo string orderlyd accepts.
    static func url(_ database: TestDatabase) -> String { database.conninfo }

    /// Resident memory in KiB, from /proc.
    var residentKiB: Int {
        let status = (try? String(contentsOfFile: "/proc/\(process.pid)/status", encoding: .utf8)) ?? ""
        return status.firstMatch(of: /VmRSS:\s+(\d+) kB/).flatMap { Int($0.1) } ?? -1
    }

    /// Waits for the process to end; nil if it is still running after `seconds`.
    func exitStatus(within seconds: Double) async throws -> Int32? {
        await process.exitStatus(within: seconds)
    }

    /// Sends SIGTERM without waiting (it is called from `defer`); the log goes at once.
    func stop() {
        process.signal(SIGTERM)
        try? FileManager.default.removeItem(atPath: process.log)
    }
}

@Suite struct DaemonTests {
    @Test func sigtermSaysByeAndExitsCleanly() async throws {
        try await withTestDatabase { database in
            try await database.createUser("term", password: "term-password", roles: [])
            let daemon = try await Daemon(database: database)
            defer { daemon.stop() }
            let client = try await OrderlyConnection.connect(host: "127.0.0.1", port: daemon.port)
            #expect(try await client.authenticate(username: "term", password: "term-password").isSuccess)
            let signalled = ContinuousClock.now
            daemon.process.signal(SIGTERM)
            #expect(try await client.nextLine() == "#bye")
            #expect(try await client.nextLine() == nil)
            #expect(try await daemon.exitStatus(within: 10) == 0, "log: \(daemon.log)")
            #expect(ContinuousClock.now - signalled < .seconds(10))
        }
    }

    @Test func passwordsNeverReachTheLogEvenAtTrace() async throws {
        try await withTestDatabase { database in
            try await database.createUser("quill", password: "Sekr1t-Hunter2-pass", roles: [])
            let daemon = try await Daemon(database: database, arguments: ["--log-level", "trace"])
            defer { daemon.stop() }
            let client = try await OrderlyConnection.connect(host: "127.0.0.1", port: daemon.port)
            _ = try await client.authenticate(username: "quill", password: "Wr0ng-Guess-pass")
            _ = try await client.request(#"AUTH quill "Sekr1t-Hunter2-pass" extra"#)
            #expect(try await client.authenticate(username: "quill", password: "Sekr1t-Hunter2-pass").isSuccess)
            await client.close()
            daemon.process.signal(SIGTERM)
            _ = try await daemon.exitStatus(within: 10)
            let log = daemon.log
            #expect(log.contains("authenticated"), "the log is being written: \(log)")
            #expect(!log.contains("Sekr1t-Hunter2-pass") && !log.contains("Wr0ng-Guess-pass"))
        }
    }

    @Test func aThousandAuthenticatedConnectionsAreHeldAtOnce() async throws {
        try await withTestDatabase { database in
            try await database.createUser("many", password: "many-password", roles: ["warehouse"])
            // A cheap hash for this user only: the point is holding connections, not bcrypt.
            try await database.execute("UPDATE orderly.users SET password_hash = orderly_ext.crypt('many-password', orderly_ext.gen_salt('bf', 4)) WHERE username = 'many'")
            // All 1000 connect before any has logged in, from one address, as one user: no
            // per-address cap, no per-user cap.
            let daemon = try await Daemon(database: database, arguments: ["--pool-size", "4", "--max-unauthenticated-per-address", "0",
                                                                          "--max-sessions-per-user", "0"])
            defer { daemon.stop() }
            let before = daemon.residentKiB
            let count = 1000
            let held = NIOLockedValueBox(0)
            let release = Gate()
            let served = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<count {
                    group.addTask {
                        let client = try await OrderlyConnection.connect(host: "127.0.0.1", port: daemon.port)
                        guard try await client.authenticate(username: "many", password: "many-password").isSuccess else { return false }
                        held.withLockedValue { $0 += 1 }
                        await release.wait()
                        let pong = try await client.request("PING").final == "+PONG"
                        await client.close()
                        return pong
                    }
                }
                try await waitUntil(seconds: 120) { held.withLockedValue { $0 } == count }
                let after = daemon.residentKiB
                print("orderlyd resident memory: \(before / 1024) MiB idle, \(after / 1024) MiB with \(count) authenticated connections "
                      + "(+\(String(format: "%.1f", Double(after - before) / Double(count))) KiB each)")
                await release.open()
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(served == count)
        }
    }
}
