import Foundation
import OrderlyClient
import OrderlyProtocol
import OrderlyServer
import OrderlyTestSupport
import Testing

/// A statement still running when the shutdown's grace period is over is cancelled, rather than
/// left running in PostgreSQL (and holding the shutdown) until the statement timeout.
@Suite struct ShutdownCancelTests {
    static let sleepTable = CommandTable(CommandTable.standard.commands + [
        Command("NAP", .sql(function: "api.test_nap"), summary: "sleeps 60 s (tests only)"),
    ])

    /// No timing is asserted: the statement sleeps for an hour and no statement timeout would end
    /// it, so without the cancel the shutdown would not return (the time limit ends the test);
    /// the waits below only guard against a hang, however busy the machine is.
    @Test(.timeLimit(.minutes(5))) func statementsStillRunningAfterTheGracePeriodAreCancelled() async throws {
        try await withTestDatabase { database in
            try await database.execute("""
                CREATE FUNCTION api.test_nap(actor bigint, args jsonb) RETURNS SETOF json LANGUAGE sql
                AS $$ SELECT json_build_object('napped', true) FROM pg_sleep(3600) $$
                """)
            try await database.createUser("nina", password: "nina-password", roles: [])
            var configuration = ServerConfiguration(host: "127.0.0.1", port: 0, database: database.config, poolSize: 2)
            configuration.shutdownGraceSeconds = 1
            configuration.approvalReminderSeconds = 0
            configuration.statementTimeoutSeconds = 0
            let server = try await OrderlyServer.start(configuration, table: Self.sleepTable)
            let client = try await OrderlyConnection.connect(host: "127.0.0.1", port: server.port)
            #expect(try await client.authenticate(username: "nina", password: "nina-password").isSuccess)
            try await client.send("NAP")
            let napping = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%test_nap%' AND state = 'active' AND pid <> pg_backend_pid()"
            try await waitFor { try await database.execute(napping).scalar == "1" }

            await server.shutdown()
            try await waitFor { try await database.execute(napping).scalar == "0" }
            await client.close()
        }
    }

    private func waitFor(_ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(180)
        while try await !condition() {
            guard ContinuousClock.now < deadline else { throw TestFailure("timed out") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}
