import OrderlyClient
import OrderlyTestSupport
import Testing

/// A database connection that ends while a command runs: a changing command's outcome is unknown
/// (`-IN_DOUBT`: it may have committed just before the end), a reading command is simply
/// `-UNAVAILABLE` (safe to send again). The backend is ended with pg_terminate_backend, as an
/// administrator, a failover or a crash would end it.
@Suite struct InDoubtTests {
    static let slowCommands = ["""
        CREATE FUNCTION api.test_slow_change(actor bigint, args jsonb) RETURNS SETOF json
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        DECLARE
            u orderly.users := orderly.begin_command('TEST SLOW CHANGE', test_slow_change.actor, test_slow_change.args);
            v_replay json := orderly.replay(u, test_slow_change.args);
        BEGIN
            IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
            PERFORM pg_sleep(60);
            RETURN NEXT orderly.remember(u, args, json_build_object('done', true));
        END $$
        """, """
        SELECT orderly.register_command('TEST SLOW CHANGE', 'api.test_slow_change', NULL, arguments => '',
            changes => true, usage => 'TEST SLOW CHANGE', summary => 'Sleeps, as a change (tests only).')
        """, """
        CREATE FUNCTION api.test_slow_read(actor bigint, args jsonb) RETURNS SETOF json
        LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        DECLARE
            u orderly.users := orderly.begin_command('TEST SLOW READ', test_slow_read.actor, test_slow_read.args);
        BEGIN
            PERFORM pg_sleep(60);
            RETURN NEXT json_build_object('done', true);
        END $$
        """, """
        SELECT orderly.register_command('TEST SLOW READ', 'api.test_slow_read', NULL, arguments => '',
            usage => 'TEST SLOW READ', summary => 'Sleeps, reading (tests only).')
        """]

    /// Sends `line`, ends the backend that runs it once it is seen sleeping, and returns the reply.
    static func endBackend(while line: String, on client: OrderlyConnection, in server: TestServer) async throws -> Response {
        let running = "datname = current_database() AND query LIKE '%api.test_slow_%' AND wait_event = 'PgSleep'"
        let terminator = Task {
            try await waitUntil("the statement runs") {
                try await server.database.execute("SELECT count(*) FROM pg_stat_activity WHERE \(running)").scalar != "0"
            }
            try await server.database.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE \(running)")
        }
        let reply = try await client.request(line)
        try await terminator.value
        return reply
    }

    @Test func aChangeCutOffMidwayIsInDoubtAReadIsUnavailable() async throws {
        try await withTestServer(prepare: { database in
            for statement in Self.slowCommands { try await database.execute(statement) }
        }) { server in
            try await server.database.createUser("rita", password: "rita-password", roles: ["sales_rep"])
            let rita = try await server.connect(as: "rita", password: "rita-password")
            let change = try await Self.endBackend(while: "TEST SLOW CHANGE idempotency_key=k1", on: rita, in: server)
            #expect(change.errorCode == "IN_DOUBT", "\(change)")
            #expect(change.message.contains("idempotency_key"), "\(change)")
            let read = try await Self.endBackend(while: "TEST SLOW READ", on: rita, in: server)
            #expect(read.final == "-UNAVAILABLE database unavailable; retry shortly", "\(read)")
            // The pool replaced the connection: the session goes on.
            #expect(try await rita.request("WHOAMI").isSuccess)
            await rita.close()
        }
    }
}
