import OrderlyClient
import OrderlyTestSupport
import Testing

@Suite struct AuthTests {
    @Test func rightPasswordLogsIn() async throws {
        try await withTestServer { server in
            try await server.database.createUser("alice", password: "correct horse", roles: ["sales_rep"])
            let client = try await server.connect()
            let auth = try await client.request(#"AUTH alice "correct horse""#)
            #expect(auth.final == "+OK authenticated as alice")
            let whoami = try await client.request("WHOAMI")
            #expect(whoami.isSuccess)
            #expect(whoami.data.count == 1)
            #expect(whoami.data[0].contains(#""username" : "alice""#) || whoami.data[0].contains(#""username":"alice""#))
            #expect(whoami.data[0].contains("sales_rep"))
            await client.close()
        }
    }

    @Test func wrongPasswordAndUnknownUserFailAlike() async throws {
        try await withTestServer { server in
            try await server.database.createUser("bob", password: "bob-password", roles: [])
            let client = try await server.connect()
            let wrong = try await client.request("AUTH bob not-the-password")
            let unknown = try await client.request("AUTH nobody bob-password")
            #expect(wrong.final.hasPrefix("-AUTH_FAILED "))
            #expect(wrong.final == unknown.final)
            #expect(try await client.request("WHOAMI").errorCode == "NOAUTH")
            await client.close()
        }
    }

    @Test func aLockedAccountAnswersLikeAWrongPasswordAndUnlockLetsIn() async throws {
        try await withTestServer { server in
            try await server.database.createUser("carol", password: "carol-password", roles: [])
            try await server.database.execute("SELECT admin.lock_user('carol')")
            let client = try await server.connect()
            let locked = try await client.request("AUTH carol carol-password")
            let unknown = try await client.request("AUTH nobody carol-password")
            #expect(locked.final == "-AUTH_FAILED invalid username or password")
            #expect(locked.final == unknown.final)
            await client.close()
            try await server.database.execute("SELECT admin.unlock_user('carol')")
            // A new connection: one without a login may not wait through the admin's work (on a
            // busy machine that outlasts the login deadline).
            let again = try await server.connect()
            #expect(try await again.request("AUTH carol carol-password").isSuccess)
            await again.close()
        }
    }

    // Waits start at a minute here: the test must not depend on how fast a busy machine sends
    // the next line.
    @Test func repeatedFailuresMakeTheAddressWaitAndAnUnknownNameWaitsAlike() async throws {
        try await withTestServer(configure: { $0.login.firstDelaySeconds = 60 }) { server in
            try await server.database.createUser("dave", password: "dave-password", roles: [])
            let client = try await server.connect()
            for name in ["dave", "no-such-dave"] {
                for _ in 0..<5 { #expect(try await client.request("AUTH \(name) guess").errorCode == "AUTH_FAILED") }
            }
            let real = try await client.request("AUTH dave dave-password")
            let unknown = try await client.request("AUTH no-such-dave dave-password")
            #expect(real.errorCode == "LOCKED")
            #expect(real.message.hasPrefix("too many failed logins for this username from your address; try again in "))
            #expect(real.final.replacing(/[0-9]+ s$/, with: "N s") == unknown.final.replacing(/[0-9]+ s$/, with: "N s"))
            await client.close()
            // Nothing about the account itself is locked.
            let account = try await server.database.execute("SELECT locked OR locked_until IS NOT NULL FROM admin.users WHERE username = 'dave'").scalar
            #expect(account == "f")
            try await server.database.execute("SELECT admin.unlock_user('dave')")
            let again = try await server.connect()
            #expect(try await again.request("AUTH dave dave-password").isSuccess)
            await again.close()
        }
    }

    /// Thirty wrong passwords for one name sent at once, each on its own connection: exactly the
    /// five free ones are checked; every other is told to wait. (Checked apart from the count,
    /// all thirty passed the wait before the first failure was counted: eight checked at once.)
    @Test func wrongPasswordsSentAtOnceGetNoMoreChecksThanTheFreeOnes() async throws {
        try await withTestServer(configure: {
            $0.poolSize = 8
            $0.login.firstDelaySeconds = 60
            $0.login.waitSeconds = 60
        }) { server in
            try await server.database.createUser("dave", password: "dave-password", roles: [])
            let codes = try await withThrowingTaskGroup(of: String.self) { group in
                for index in 0..<30 {
                    group.addTask {
                        let client = try await server.connect()
                        let code = try await client.request("AUTH dave guess-\(index)").errorCode ?? "OK"
                        await client.close()
                        return code
                    }
                }
                return try await group.reduce(into: [String: Int]()) { $0[$1, default: 0] += 1 }
            }
            #expect(codes == ["AUTH_FAILED": 5, "LOCKED": 25], "\(codes)")
        }
    }

    @Test func aRoleGrantedInSQLShowsAfterTheNextAuth() async throws {
        try await withTestServer { server in
            try await server.database.createUser("erin", password: "erin-password", roles: ["sales_rep"])
            let client = try await server.connect(as: "erin", password: "erin-password")
            #expect(try await !client.request("WHOAMI").data[0].contains("sales_manager"))
            try await server.database.execute("SELECT admin.grant_role('erin', 'sales_manager')")
            #expect(try await client.authenticate(username: "erin", password: "erin-password").isSuccess)
            let whoami = try await client.request("WHOAMI")
            #expect(whoami.data[0].contains("sales_manager"))
            await client.close()
        }
    }

    @Test func anAdminLockEndsTheUsersOpenSessions() async throws {
        try await withTestServer { server in
            try await server.database.createUser("frank", password: "frank-password", roles: [])
            let client = try await server.connect(as: "frank", password: "frank-password")
            let bystander = try await server.connect(as: "frank", password: "frank-password")
            try await server.database.execute("SELECT admin.lock_user('frank')")
            #expect(try await client.nextLine() == #">session.closed {"reason":"account locked by an administrator"}"#)
            #expect(try await client.nextLine() == nil)
            #expect(try await bystander.nextLine()?.hasPrefix(">session.closed ") == true)
            await bystander.close()
        }
    }

    @Test func theDatabaseRechecksEvenWithoutANotification() async throws {
        try await withTestServer { server in
            try await server.database.createUser("fiona", password: "fiona-password", roles: [])
            let client = try await server.connect(as: "fiona", password: "fiona-password")
            // Behind the admin functions' back: no NOTIFY, so only the api function can notice.
            try await server.database.execute("UPDATE orderly.users SET locked = true WHERE username = 'fiona'")
            #expect(try await client.request("WHOAMI").errorCode == "NOAUTH")
            #expect(try await client.request("WHOAMI").errorCode == "NOAUTH")
            await client.close()
        }
    }

    @Test func failuresFromOneAddressBlockItBeforeAnyPasswordCheck() async throws {
        try await withTestServer(configure: { $0.login.addressFailures = 3 }) { server in
            try await server.database.createUser("gina", password: "gina-password", roles: [])
            let client = try await server.connect()
            for name in ["x1", "x2", "x3"] { #expect(try await client.request("AUTH \(name) wrong-password").errorCode == "AUTH_FAILED") }
            let refused = try await client.request("AUTH gina gina-password")
            #expect(refused.errorCode == "LOCKED")
            #expect(refused.message.contains("address"))
            await client.close()
        }
    }

    @Test func passwordsWithSpacesAndQuotesWorkAsJSONStrings() async throws {
        try await withTestServer { server in
            let password = #"my "very" secret \ pass 密码"#
            try await server.database.createUser("grace", password: password, roles: [])
            let client = try await server.connect()
            #expect(try await client.authenticate(username: "grace", password: password).isSuccess)
            #expect(try await client.request("AUTH grace").errorCode == "BAD_SYNTAX")
            await client.close()
        }
    }
}
