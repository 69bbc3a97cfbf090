import Foundation
import NIOConcurrencyHelpers
import NIOCore
import OrderlyClient
import OrderlyServer
import OrderlyTestSupport
import Testing

@Suite struct LimitsTests {
    /// One login cannot take every connection: past its cap one more AUTH is BUSY (the session
    /// stays, unauthenticated), a session that logs out or closes frees its place, logging in
    /// again on the same session takes no second one, and other users are not affected.
    @Test func oneUserHasAtMostItsCapOfSessions() async throws {
        try await withTestServer(configure: { $0.maxSessionsPerUser = 2 }) { server in
            try await server.database.createUser("cara", password: "cara-password", roles: ["customer"])
            try await server.database.createUser("rita", password: "rita-password", roles: ["sales_rep"])
            let first = try await server.connect(as: "cara", password: "cara-password")
            let second = try await server.connect(as: "cara", password: "cara-password")
            #expect(try await second.authenticate(username: "cara", password: "cara-password", busyRetries: 0).isSuccess,
                    "logging in again on the same session takes no second place")
            let third = try await server.connect()
            let refused = try await third.authenticate(username: "cara", password: "cara-password", busyRetries: 0)
            #expect(refused.errorCode == "BUSY" && refused.message.contains("cara has 2 sessions open"), "\(refused.final)")
            #expect(try await third.request("WHOAMI").errorCode == "NOAUTH", "the refused session has no login")
            #expect(try await third.request("PING").final == "+PONG", "but stays open")
            let rita = try await server.connect(as: "rita", password: "rita-password")
            #expect(try await rita.request("WHOAMI").isSuccess, "another user logs in")
            await first.close()
            try await waitUntil("the closed session's place is free") {
                try await third.authenticate(username: "cara", password: "cara-password", busyRetries: 0).isSuccess
            }
            // A session that logs in as somebody else gives its place back.
            #expect(try await second.authenticate(username: "rita", password: "rita-password", busyRetries: 0).isSuccess)
            let fourth = try await server.connect()
            #expect(try await fourth.authenticate(username: "cara", password: "cara-password", busyRetries: 0).isSuccess)
            for client in [second, third, rita, fourth] { await client.close() }
        }
    }

    @Test func repeatedOverLongLinesCloseTheConnection() async throws {
        try await withTestServer(configure: { $0.limits.maxLineBytes = 256; $0.maxOversizedLines = 3 }) { server in
            let client = try await server.connect()
            let long = Array(repeating: UInt8(ascii: "x"), count: 1000) + [UInt8(ascii: "\n")]
            try await client.sendRaw(long)
            #expect(try await client.readResponse().errorCode == "LINE_TOO_LONG")
            try await client.sendRaw(long)
            #expect(try await client.readResponse().errorCode == "LINE_TOO_LONG")
            try await client.sendRaw(long)
            let last = try await client.readResponse()
            #expect(last.errorCode == "LINE_TOO_LONG" && last.message.contains("closing"))
            #expect(try await client.nextLine() == nil)
        }
    }

    @Test func aClientThatDoesNotReadIsNoLongerReadFrom() async throws {
        // 24 000 requests before any login may take longer than the login deadline on a busy machine.
        try await withTestServer(configure: { $0.maxRequestsInFlight = 4; $0.maxOutboundBytes = 4096; $0.loginDeadlineSeconds = 0 }) { server in
            let greedy = try await RawClient.connect(port: server.port)
            // 24 MB of requests whose replies add up to more than the kernel buffers hold, and
            // never a reply read: the server must stop reading, not buffer.
            let requests = 24_000
            let line = Array("HELP".utf8) + Array(repeating: UInt8(ascii: " "), count: 995) + [UInt8(ascii: "\n")]
            let written = greedy.write(Array(repeating: line, count: requests).flatMap { $0 })
            let finished = NIOLockedValueBox(false)
            written.whenComplete { _ in finished.withLockedValue { $0 = true } }
            try await Task.sleep(for: .seconds(3))
            #expect(!finished.withLockedValue { $0 }, "the server kept reading from a client that reads nothing")
            // Meanwhile everybody else is served.
            let other = try await server.connect()
            #expect(try await other.request("PING").final == "+PONG")
            await other.close()
            // Nothing was lost: once the client reads, every request gets its whole reply, in order.
            greedy.startReading()
            try await written.get()
            try await waitUntil(seconds: 60) { greedy.finalLineCount == requests }
            #expect(greedy.finalLineCount == requests)
            let text = greedy.text
            #expect(text.components(separatedBy: "+OK 5 commands\n").count == requests + 1)
            #expect(!text.contains("\n-"))
            await greedy.close()
        }
    }

    @Test func aSubscriberThatDoesNotReadIsDisconnected() async throws {
        try await withTestServer(configure: { $0.maxOutboundBytes = 16 * 1024 }) { server in
            try await server.database.createUser("sloth", password: "sloth-password", roles: ["warehouse"])
            let sloth = try await RawClient.connect(port: server.port, reading: true)
            _ = try await sloth.write(Array("AUTH sloth sloth-password\n".utf8)).get()
            try await waitUntil { sloth.text.contains("+OK authenticated") }
            try await sloth.channel.setOption(.autoRead, value: false).get()
            // About 8 MB of pushes in one go: far past what the kernel buffers and our limit hold.
            let message = String(repeating: "m", count: 1900)
            try await server.database.execute("SELECT count(admin.notify('user:sloth', $1)) FROM generate_series(1, 4000)", [message])
            // A client that never reads never sees the server hang up; give the server time to
            // give up on it, then read: the stream must end long before all 4000 events.
            try await Task.sleep(for: .seconds(4))
            sloth.startReading()
            try await waitUntil(seconds: 20) { sloth.isClosed }
            #expect(sloth.isClosed)
            #expect(sloth.text.components(separatedBy: ">admin.notice ").count - 1 < 4000)
            let other = try await server.connect()
            #expect(try await other.request("PING").final == "+PONG")
            await other.close()
        }
    }

    @Test func aClientThatNeverReadsIsClosedWhenItsRepliesStall() async throws {
        try await withTestServer(configure: {
            $0.idleSecondsBeforeAuth = 0
            $0.idleSecondsAfterAuth = 0
            $0.writeStallSeconds = 1
            $0.maxOutboundBytes = 4096
            $0.loginDeadlineSeconds = 0
        }) { server in
            let stuck = try await RawClient.connect(port: server.port)
            let line = Array("HELP".utf8) + Array(repeating: UInt8(ascii: " "), count: 995) + [UInt8(ascii: "\n")]
            _ = stuck.write(Array(repeating: line, count: 24_000).flatMap { $0 })
            // Its replies stall; after the limit the server gives up on it. Waiting for that, not
            // for a fixed time: on a busy machine the replies take longer to fill the buffers.
            // First its session must be open: the connect returns before the server has taken
            // it, and "none open" would then hold at once.
            try await waitUntil(seconds: 120) { server.server.openConnections == 1 }
            try await waitUntil(seconds: 120) { server.server.openConnections == 0 }
            // Reading now shows the stream ending long before all 24000 replies.
            stuck.startReading()
            try await waitUntil(seconds: 20) { stuck.isClosed }
            #expect(stuck.isClosed)
            // (Its `#bye` sits behind the replies it never read, so it need not arrive.)
            #expect(stuck.finalLineCount < 24_000)
        }
    }

    @Test func idleConnectionsAreClosedSoonerBeforeAuthThanAfter() async throws {
        // After AUTH the limit is well above the pause below, so that a loaded machine cannot
        // make the pause look like idleness.
        try await withTestServer(configure: { $0.idleSecondsBeforeAuth = 1; $0.idleSecondsAfterAuth = 6 }) { server in
            try await server.database.createUser("idler", password: "idler-password", roles: [])
            let anonymous = try await server.connect()
            let started = ContinuousClock.now
            #expect(try await anonymous.nextLine() == "#bye idle timeout")
            #expect(try await anonymous.nextLine() == nil)
            #expect(ContinuousClock.now - started < .seconds(3))

            let member = try await server.connect(as: "idler", password: "idler-password")
            try await Task.sleep(for: .seconds(2))
            #expect(try await member.request("PING").final == "+PONG")
            #expect(try await member.nextLine() == "#bye idle timeout")
            #expect(ContinuousClock.now - started > .seconds(7))
        }
    }

    /// A server with a 1-s idle limit and a SLOW command that takes 2.5 s; a logged-in client.
    private func withSlowCommandAndShortIdleLimit(_ body: (OrderlyConnection) async throws -> Void) async throws {
        try await withTestServer(table: ShutdownTests.slowTable, prepare: ShutdownTests.createSlowFunction,
                                 configure: { $0.idleSecondsBeforeAuth = 1; $0.idleSecondsAfterAuth = 1 }) { server in
            try await server.database.execute("CREATE OR REPLACE FUNCTION api.test_slow(actor bigint, args jsonb) RETURNS SETOF json LANGUAGE sql AS $$ SELECT json_build_object('slept', true) FROM pg_sleep(2.5) $$")
            try await server.database.createUser("patient", password: "patient-password", roles: [])
            let client = try await server.connect(as: "patient", password: "patient-password")
            try await body(client)
        }
    }

    @Test func aSlowReplyIsNotIdleness() async throws {
        try await withSlowCommandAndShortIdleLimit { client in
            // The server takes longer than the idle limit to answer: the client still gets it.
            let reply = try await client.request("SLOW")
            #expect(reply.data == [#"{"slept":true}"#] && reply.final == "+OK 1 row", "\(reply)")
            #expect(try await client.nextLine() == "#bye idle timeout", "idle again once answered")
        }
    }

    @Test func whatArrivesDuringASlowReplyDoesNotRestartTheIdleClock() async throws {
        try await withSlowCommandAndShortIdleLimit { client in
            // A PING half a second in: it used to restart the idle clock, which then ran out
            // while the first request was still being answered.
            try await client.sendRaw(Array("SLOW\n".utf8))
            try await Task.sleep(for: .milliseconds(500))
            try await client.sendRaw(Array("PING\n".utf8))
            let reply = try await client.readResponse()
            #expect(reply.data == [#"{"slept":true}"#] && reply.final == "+OK 1 row", "\(reply)")
            #expect(try await client.readResponse().final == "+PONG")
            #expect(try await client.nextLine() == "#bye idle timeout", "idle again once answered")
        }
    }

    @Test func connectionsBeyondTheLimitAreTurnedAway() async throws {
        try await withTestServer(configure: { $0.maxConnections = 3 }) { server in
            var open: [OrderlyConnection] = []
            for _ in 0..<3 { open.append(try await server.connect()) }
            let refused = try await RawClient.connect(port: server.port, reading: true)
            // A refused connection is not served, not even a PING.
            _ = refused.write(Array("PING\n".utf8))
            try await waitUntil { refused.isClosed }
            #expect(refused.text == "-BUSY too many connections; try again later\n")
            await open.removeLast().close()
            try await Task.sleep(for: .milliseconds(200))
            let again = try await server.connect()
            #expect(try await again.request("PING").final == "+PONG")
        }
    }

    /// A reply past --max-reply-bytes is refused without being built; a smaller one of the same
    /// command goes through, and so does the next request.
    @Test func aReplyOverTheByteLimitIsRefusedNotBuilt() async throws {
        try await withTestServer(configure: { $0.maxReplyBytes = 4096 }) { server in
            try await server.database.createUser("wes", password: "wes-password", roles: ["warehouse"])
            // 40 notices of about 300 bytes each: some 12 000 bytes as INBOX lines.
            try await server.database.execute(
                "SELECT admin.notify('user:wes', 'pallet ' || i || ' ' || repeat('n', 250)) FROM generate_series(1, 40) AS i")
            let wes = try await server.connect(as: "wes", password: "wes-password")
            let all = try await wes.request("INBOX limit=40")
            #expect(all.data.isEmpty)
            #expect(all.final == "-TOO_LARGE the reply would be larger than 4096 bytes; ask for less (e.g. a smaller limit=)", "\(all.final)")
            let some = try await wes.request("INBOX limit=5")
            #expect(some.isSuccess && some.data.count == 5, "\(some.final)")
            #expect(try await wes.request("WHOAMI").isSuccess)
            await wes.close()
        }
    }

    @Test func thePlainListenerStaysOnLoopbackUnlessAllowed() async throws {
        try await withTestDatabase { database in
            let configuration = ServerConfiguration(host: "0.0.0.0", port: 0, database: database.config, poolSize: 1)
            await #expect(throws: OrderlyServer.Failure.self) { _ = try await OrderlyServer.start(configuration) }
        }
    }
}

/// Polls `condition` until it holds or `seconds` pass.
func waitUntil(seconds: Double = 10, _ condition: @Sendable () -> Bool) async throws {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while !condition() && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
}

