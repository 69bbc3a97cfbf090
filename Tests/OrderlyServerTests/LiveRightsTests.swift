import OrderlyClient
import OrderlyProtocol
import OrderlyServer
import OrderlyTestSupport
import Testing

@Suite struct LiveRightsTests {
    @Test func aRevokedRoleEndsTheUsersSessionsAndTheNextLoginHasTheRightsLeft() async throws {
        try await withTestServer { server in
            try await server.database.createUser("ada", password: "ada-password", roles: ["admin", "warehouse"])
            let client = try await server.connect(as: "ada", password: "ada-password")
            let other = try await server.connect(as: "ada", password: "ada-password")
            #expect(try await client.request("STATS").isSuccess)
            try await server.database.execute("SELECT admin.revoke_role('ada', 'admin')")
            for session in [client, other] {
                #expect(try await session.nextLine() == #">session.closed {"reason":"a role was revoked"}"#)
                #expect(try await session.nextLine() == nil)
                await session.close()
            }
            let again = try await server.connect(as: "ada", password: "ada-password")
            #expect(try await again.request("STATS").errorCode == "FORBIDDEN")
            #expect(try await !again.request("HELP").data.joined().contains("STATS"))
            await again.close()
        }
    }

    /// STATS is server-wide: a customer's login is refused it even when an admin marked
    /// stats.read for customers and gave it one.
    @Test func aCustomersLoginGetsNoStatsWhateverItHolds() async throws {
        try await withTestServer { server in
            try await server.database.createUser("buyer", password: "buyer-password", roles: ["customer"])
            try await server.database.execute("SELECT admin.set_permission_for_customers('stats.read', true)")
            try await server.database.execute("SELECT admin.grant_permission('customer', 'stats.read')")
            let buyer = try await server.connect(as: "buyer", password: "buyer-password")
            let stats = try await buyer.request("STATS")
            #expect(stats.errorCode == "FORBIDDEN", "\(stats.final)")
            #expect(try await !buyer.request("HELP").data.joined().contains("STATS"))
            await buyer.close()
        }
    }

    @Test func aPasswordChangeEndsTheUsersSessionsButNotALoginWithTheNewPassword() async throws {
        try await withTestServer { server in
            try await server.database.createUser("pia", password: "pia-password", roles: ["warehouse"])
            let before = try await server.connect(as: "pia", password: "pia-password")
            try await server.database.execute("SELECT admin.set_password('pia', 'pia-new-password')")
            // A login with the new password, made at once: whenever the notice of the change
            // reaches the server, this session is not the one it ends.
            let after = try await server.connect(as: "pia", password: "pia-new-password")
            #expect(try await before.nextLine() == #">session.closed {"reason":"password changed"}"#)
            #expect(try await before.nextLine() == nil)
            await before.close()
            try await server.database.execute("SELECT admin.notify('user:pia', 'still here')")
            #expect(try await after.nextLine()?.contains("still here") == true)
            #expect(try await after.request("WHOAMI").isSuccess)
            await after.close()
        }
    }

    /// The notice of a change can be missed (the LISTEN connection was down); the session's next
    /// command reads the rights afresh and ends the login itself.
    @Test func aPasswordChangedWithoutANoticeEndsTheLoginAtTheNextCommand() async throws {
        try await withTestServer { server in
            try await server.database.createUser("pat", password: "pat-password", roles: ["admin"])
            let client = try await server.connect(as: "pat", password: "pat-password")
            // Behind the admin functions' back: no NOTIFY, so only the re-read can notice.
            try await server.database.execute("UPDATE orderly.users SET password_hash = orderly_ext.crypt('pat-other-password', orderly_ext.gen_salt('bf', 4)) WHERE username = 'pat'")
            // STATS is a built-in with a permission: its rights are always read fresh.
            let reply = try await client.request("STATS")
            #expect(reply.final == "-NOAUTH your session has ended (password changed); authenticate again", "\(reply)")
            #expect(try await client.authenticate(username: "pat", password: "pat-other-password").isSuccess)
            #expect(try await client.request("STATS").isSuccess)
            await client.close()
        }
    }

    @Test func aRevokedPermissionIsRefusedByTheDatabaseEvenBeforeTheNotificationArrives() async throws {
        try await withTestServer { server in
            try await server.database.execute("SELECT admin.create_role('readers', 'inbox readers')")
            try await server.database.createUser("bea", password: "bea-password", roles: ["readers"])
            let client = try await server.connect(as: "bea", password: "bea-password")
            #expect(try await client.request("INBOX").isSuccess)
            // Behind the admin API's back (no NOTIFY): only the api function's own check can see it.
            try await server.database.execute("DELETE FROM orderly.role_permissions WHERE permission = 'inbox.read' AND role_id = (SELECT id FROM orderly.roles WHERE name = 'readers')")
            #expect(try await client.request("INBOX").errorCode == "FORBIDDEN")
            await client.close()
        }
    }

    @Test func aGrantedRoleWorksOnTheVeryNextCommand() async throws {
        try await withTestServer { server in
            try await server.database.createUser("cy", password: "cy-password", roles: ["warehouse"])
            let client = try await server.connect(as: "cy", password: "cy-password")
            #expect(try await client.request("STATS").errorCode == "FORBIDDEN")
            try await server.database.execute("SELECT admin.grant_role('cy', 'admin')")
            #expect(try await client.request("STATS").isSuccess)
            await client.close()
        }
    }

    @Test func failedLoginsBySomeoneElseDoNotEndAUsersSession() async throws {
        // A minute's wait after the failures, so that the refusal below does not depend on speed.
        try await withTestServer(configure: { $0.login.firstDelaySeconds = 60 }) { server in
            try await server.database.createUser("vic", password: "vic-password", roles: ["warehouse"])
            let victim = try await server.connect(as: "vic", password: "vic-password")
            let attacker = try await server.connect()
            for _ in 0..<5 { _ = try await attacker.request("AUTH vic guess") }
            #expect(try await attacker.request("AUTH vic vic-password").errorCode == "LOCKED")
            // The victim's session goes on: commands and pushes.
            #expect(try await victim.request("WHOAMI").isSuccess)
            try await server.database.execute("SELECT admin.notify('user:vic', 'still here')")
            #expect(try await victim.nextLine()?.contains("still here") == true)
            await victim.close()
            await attacker.close()
        }
    }

    @Test func aLoginAfterARevocationGetsOnlyTheRemainingRolesPushes() async throws {
        try await withTestServer { server in
            try await server.database.createUser("rex", password: "rex-password", roles: ["warehouse", "sales_rep"])
            let before = try await server.connect(as: "rex", password: "rex-password")
            try await server.database.execute("SELECT admin.revoke_role('rex', 'warehouse')")
            #expect(try await before.nextLine() == #">session.closed {"reason":"a role was revoked"}"#)
            await before.close()
            let client = try await server.connect(as: "rex", password: "rex-password")
            try await server.database.execute("SELECT admin.notify('role:warehouse', 'not for rex')")
            try await server.database.execute("SELECT admin.notify('role:sales_rep', 'for rex')")
            let line = try await client.nextLine()
            #expect(line?.contains("for rex") == true && line?.contains("not for rex") == false)
            await client.close()
        }
    }

    @Test func statsCountsRequestsErrorsAndLatency() async throws {
        try await withTestServer { server in
            try await server.database.createUser("root", password: "root-password", roles: ["admin"])
            let client = try await server.connect(as: "root", password: "root-password")
            for _ in 0..<3 { _ = try await client.request("PING") }
            _ = try await client.request("NOPE")
            _ = try await client.request("WHOAMI")
            let stats = try await client.request("STATS")
            let overall = try #require(stats.data.first)
            #expect(overall.contains(#""open":1"#))
            #expect(overall.contains(#""UNKNOWN_COMMAND":1"#))
            #expect(overall.contains(#""pool":{"size":4"#))
            let ping = try #require(stats.data.first { $0.contains(#""command":"PING""#) })
            #expect(ping.contains(#""requests":3"#) && ping.contains(#""p50_ms":"#) && ping.contains(#""p99_ms":"#))
            #expect(stats.data.contains { $0.contains(#""command":"WHOAMI""#) })
            await client.close()
        }
    }
}

@Suite struct ShutdownTests {
    /// A command that takes a while, so that a shutdown finds a reply in progress.
    static let slowTable = CommandTable(CommandTable.standard.commands + [
        Command("SLOW", .sql(function: "api.test_slow"), summary: "sleeps 1 s (tests only)"),
    ])

    static func createSlowFunction(_ database: TestDatabase) async throws {
        try await database.execute("""
            CREATE FUNCTION api.test_slow(actor bigint, args jsonb) RETURNS SETOF json LANGUAGE sql
            AS $$ SELECT json_build_object('slept', true) FROM pg_sleep(1) $$
            """)
        try await database.execute("GRANT EXECUTE ON FUNCTION api.test_slow(bigint, jsonb) TO orderly_app")
    }

    @Test func repliesInProgressFinishThenEverySessionHearsBye() async throws {
        try await withTestDatabase { database in
            try await ShutdownTests.createSlowFunction(database)
            try await database.createUser("sam", password: "sam-password", roles: [])
            let configuration = ServerConfiguration(host: "127.0.0.1", port: 0, database: database.config, poolSize: 2)
            let server = try await OrderlyServer.start(configuration, table: ShutdownTests.slowTable)
            let working = try await OrderlyConnection.connect(host: "127.0.0.1", port: server.port)
            let idle = try await OrderlyConnection.connect(host: "127.0.0.1", port: server.port)
            #expect(try await working.authenticate(username: "sam", password: "sam-password").isSuccess)
            try await working.send("SLOW")
            try await Task.sleep(for: .milliseconds(300))
            let started = ContinuousClock.now
            await server.shutdown()
            #expect(ContinuousClock.now - started < .seconds(10))
            // The slow reply arrived whole, then the bye.
            let reply = try await working.readResponse()
            #expect(reply.data == [#"{"slept":true}"#] && reply.final == "+OK 1 row")
            #expect(try await working.nextLine() == "#bye")
            #expect(try await working.nextLine() == nil)
            #expect(try await idle.nextLine() == "#bye")
            #expect(try await idle.nextLine() == nil)
            await #expect(throws: (any Error).self) { _ = try await OrderlyConnection.connect(host: "127.0.0.1", port: server.port) }
        }
    }
}
