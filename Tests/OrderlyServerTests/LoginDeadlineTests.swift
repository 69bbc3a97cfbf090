import Foundation
import OrderlyClient
import OrderlyServer
import OrderlyTestSupport
import Testing

/// A connection must log in within a fixed time, whatever it sends; one address cannot hold many
/// connections without logging in.
@Suite struct LoginDeadlineTests {
    @Test func pingingDoesNotPostponeTheLoginDeadline() async throws {
        try await withTestServer(configure: { $0.loginDeadlineSeconds = 2; $0.idleSecondsBeforeAuth = 60 }) { server in
            try await server.database.createUser("lena", password: "lena-password", roles: [])
            let loggedIn = try await server.connect(as: "lena", password: "lena-password")
            let started = ContinuousClock.now
            let stranger = try await server.connect()
            var last = ""
            // PING every 200 ms: each one used to restart the only clock there was.
            while ContinuousClock.now - started < .seconds(60) {
                let reply = try? await stranger.request("PING")
                guard let reply, reply.final == "+PONG" else { break }
                last = reply.final
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(last == "+PONG")
            #expect(ContinuousClock.now - started < .seconds(60), "the stranger was never cut off")
            #expect(ContinuousClock.now - started >= .seconds(2))
            // The logged-in connection is not affected.
            #expect(try await loggedIn.request("PING").final == "+PONG")
            await stranger.close()
            await loggedIn.close()
        }
    }

    @Test func theDeadlineSaysWhy() async throws {
        try await withTestServer(configure: { $0.loginDeadlineSeconds = 1 }) { server in
            let stranger = try await server.connect()
            var lines: [String] = []
            while let line = try await stranger.nextLine() { lines.append(line) }
            #expect(lines == ["#bye login deadline"])
        }
    }

    @Test func aFailedReAuthStartsTheDeadlineAgain() async throws {
        try await withTestServer(configure: { $0.loginDeadlineSeconds = 2 }) { server in
            try await server.database.createUser("lena", password: "lena-password", roles: [])
            let client = try await server.connect(as: "lena", password: "lena-password")
            // Logged in for longer than the deadline: no bye.
            try await Task.sleep(for: .seconds(3))
            #expect(try await client.request("PING").final == "+PONG")
            #expect(try await client.request("AUTH lena wrong-password").errorCode == "AUTH_FAILED")
            #expect(try await client.request("WHOAMI").errorCode == "NOAUTH")
            var lines: [String] = []
            while let line = try await client.nextLine() { lines.append(line) }
            #expect(lines == ["#bye login deadline"])
        }
    }

    @Test func oneAddressMayHoldOnlySoManyConnectionsWithoutLoggingIn() async throws {
        try await withTestServer(configure: { $0.maxUnauthenticatedPerAddress = 3 }) { server in
            try await server.database.createUser("lena", password: "lena-password", roles: [])
            var waiting: [OrderlyConnection] = []
            for _ in 0..<3 { waiting.append(try await server.connect()) }
            let refused = try await server.connect()
            #expect(refused.greeting.hasPrefix("-BUSY too many connections from your address that have not logged in"))
            await refused.close()
            // Once one of them logs in, there is room for another.
            #expect(try await waiting[0].authenticate(username: "lena", password: "lena-password").isSuccess)
            let admitted = try await server.connect()
            #expect(admitted.greeting.hasPrefix("#orderly"))
            for connection in waiting + [admitted] { await connection.close() }
        }
    }
}

/// A login lasts at most the session lifetime, however busy the session is.
@Suite struct SessionLifetimeTests {
    @Test func aBusySessionEndsWhenItsLoginExpires() async throws {
        try await withTestServer(configure: { $0.sessionLifetimeSeconds = 2 }) { server in
            try await server.database.createUser("lena", password: "lena-password", roles: [])
            let started = ContinuousClock.now
            let client = try await server.connect(as: "lena", password: "lena-password")
            var last = ""
            while ContinuousClock.now - started < .seconds(60) {
                guard let reply = try? await client.request("WHOAMI"), reply.isSuccess else { break }
                last = reply.final
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(last == "+OK 1 row")
            #expect(ContinuousClock.now - started >= .seconds(2))
            #expect(ContinuousClock.now - started < .seconds(60), "the login never expired")
            // A new login gets a new lifetime.
            let again = try await server.connect(as: "lena", password: "lena-password")
            #expect(try await again.request("WHOAMI").isSuccess)
            await again.close()
            await client.close()
        }
    }

    @Test func theExpirySaysWhy() async throws {
        try await withTestServer(configure: { $0.sessionLifetimeSeconds = 1 }) { server in
            try await server.database.createUser("lena", password: "lena-password", roles: [])
            let client = try await server.connect(as: "lena", password: "lena-password")
            var lines: [String] = []
            while let line = try await client.nextLine() { lines.append(line) }
            #expect(lines == ["#bye session expired"])
        }
    }
}
