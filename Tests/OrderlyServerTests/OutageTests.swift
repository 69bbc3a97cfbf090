import Foundation
import NIOConcurrencyHelpers
import NIOPosix
import OrderlyClient
import OrderlyServer
import OrderlyStore
import OrderlyTestSupport
import PostgresClient
import Testing

@Suite struct OutageTests {
    @Test func aPostgresRestartUnderLoadIsSurvived() async throws {
        // A cluster of its own, so that restarting it disturbs no other test.
        let folder = TemporaryFiles.path("orderly-outage")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let cluster = try EmbeddedPostgres(dataDirectory: folder + "/pgdata", logger: TestCluster.logger)
        try await NIOThreadPool.singleton.runIfActive { _ = try cluster.start() }
        defer { cluster.stop() }
        _ = try await Migrator(directory: TestCluster.sqlDirectory).migrate(cluster.connectionConfig, logger: TestCluster.logger)
        let admin = try await NIOThreadPool.singleton.runIfActive { try Connection(config: cluster.connectionConfig) }
        defer { admin.close() }
        try await NIOThreadPool.singleton.runIfActive {
            for i in 0..<20 { try admin.query("SELECT admin.create_user($1, 'outage-password', ARRAY['warehouse'])", ["u\(i)"]) }
        }
        let configuration = ServerConfiguration(host: "127.0.0.1", port: 0, database: cluster.connectionConfig, poolSize: 4, poolWaitSeconds: 2)
        let server = try await OrderlyServer.start(configuration)

        let codes = NIOLockedValueBox<[String: Int]>([:])
        let restarted = NIOLockedValueBox<ContinuousClock.Instant?>(nil)
        let recoveredAfter = NIOLockedValueBox<[Duration]>([])
        let ready = NIOLockedValueBox(0)
        // Each client keeps working until it has succeeded again after the restart.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<20 {
                group.addTask {
                    let client = try await OrderlyConnection.connect(host: "127.0.0.1", port: server.port)
                    guard try await client.authenticate(username: "u\(i)", password: "outage-password").isSuccess else { throw TestFailure("auth") }
                    ready.withLockedValue { $0 += 1 }
                    while true {
                        let response = try await client.request("WHOAMI")
                        let code = response.errorCode ?? "OK"
                        codes.withLockedValue { $0[code, default: 0] += 1 }
                        if response.isSuccess, let at = restarted.withLockedValue({ $0 }) {
                            recoveredAfter.withLockedValue { $0.append(ContinuousClock.now - at) }
                            await client.close()
                            return
                        }
                        try await Task.sleep(for: .milliseconds(20))
                    }
                }
            }
            group.addTask {
                try await waitUntil(seconds: 60) { ready.withLockedValue { $0 } == 20 }
                try await Task.sleep(for: .milliseconds(300))
                try await NIOThreadPool.singleton.runIfActive {
                    cluster.stop()
                    _ = try cluster.start()
                }
                restarted.withLockedValue { $0 = .now }
            }
            try await group.waitForAll()
        }
        let seen = codes.withLockedValue { $0 }
        #expect(Set(seen.keys).isSubset(of: ["OK", "UNAVAILABLE", "BUSY"]), "only retryable errors: \(seen)")
        #expect(seen["UNAVAILABLE", default: 0] > 0, "the outage was noticed: \(seen)")
        #expect(recoveredAfter.withLockedValue { $0 }.count == 20)
        #expect(recoveredAfter.withLockedValue { $0 }.allSatisfy { $0 < .seconds(10) })

        // After the restart the LISTEN connection is back: a notice reaches its online recipient,
        // and is in the inbox either way.
        let client = try await OrderlyConnection.connect(host: "127.0.0.1", port: server.port)
        #expect(try await client.authenticate(username: "u0", password: "outage-password").isSuccess)
        let reconnected = try await NIOThreadPool.singleton.runIfActive { try Connection(config: cluster.connectionConfig) }
        defer { reconnected.close() }
        try await NIOThreadPool.singleton.runIfActive { _ = try reconnected.query("SELECT admin.notify('user:u0', 'back again')") }
        var pushed = false
        for _ in 0..<50 where !pushed {
            let response = try await client.request("PING")
            pushed = response.events.contains { $0.contains("back again") }
            if !pushed { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(pushed)
        #expect(try await client.request("INBOX").data.contains { $0.contains("back again") })
        await client.close()
        await server.shutdown()
    }
}
