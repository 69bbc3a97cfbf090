import OrderlyClient
import OrderlyServer
import OrderlyTestSupport
import Testing

@Suite struct ProtocolServerTests {
    @Test func greetingAndCommandsBeforeAuth() async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            #expect(client.greeting == "#orderly proto=1 version=0.1.0 auth=required maxline=65536")
            #expect(try await client.request("PING").final == "+PONG")
            #expect(try await client.request("ping").final == "+PONG")
            let hello = try await client.request("HELLO")
            #expect(hello.isSuccess && hello.data.first?.contains(#""authenticated":false"#) == true)
            #expect(try await client.request("WHOAMI").errorCode == "NOAUTH")
            #expect(try await client.request("FROBNICATE 1 2").errorCode == "UNKNOWN_COMMAND")
            #expect(try await client.request("ORDER FOO 1").final == "-UNKNOWN_COMMAND unknown command 'ORDER FOO'; HELP ORDER lists the ORDER commands")
            let help = try await client.request("HELP")
            #expect(help.data.count == 5)
            #expect(!help.data.joined().contains("WHOAMI"))
            await client.close()
        }
    }

    @Test func helpAfterAuthShowsWhatTheRoleMayRun() async throws {
        try await withTestServer { server in
            try await server.database.createUser("hank", password: "hank-password", roles: [])
            let client = try await server.connect(as: "hank", password: "hank-password")
            let help = try await client.request("HELP")
            #expect(help.data.joined().contains("WHOAMI"))
            #expect(try await client.request("HELP whoami").data.count == 1)
            #expect(try await client.request("HELP NOPE").errorCode == "NOT_FOUND")
            #expect(try await client.request("HELP ORDER SHOW 1").final == "-NOT_FOUND no command 'ORDER SHOW 1' that you may run")
            #expect(try await client.request("HELP order").errorCode == "NOT_FOUND", "hank may run no ORDER command")
            // A first word lists every command it begins that the role may run, not the first one.
            try await server.database.createUser("sara", password: "sara-password", roles: ["sales_rep"])
            let sara = try await server.connect(as: "sara", password: "sara-password")
            let orders = try await sara.request("HELP order").data.compactMap { JSONValue(parsing: $0)?["command"].text }
            #expect(orders.count > 5 && orders.allSatisfy { $0.hasPrefix("ORDER ") } && orders.contains("ORDER LINE ADD"), "\(orders)")
            #expect(try await sara.request("HELP ORDER LIST").data.count == 1)
            // Staff-only commands (the registry's staff_only) are listed to staff, not to a
            // customer's login, which is refused them with the registry's words.
            let staffOnly = ["APPROVAL SHOW", "CUSTOMER CREATE"]
            let saraSees = try await sara.request("HELP").data.compactMap { JSONValue(parsing: $0)?["command"].text }
            #expect(Set(staffOnly).isSubset(of: saraSees))
            try await server.database.createUser("cora", password: "cora-password", roles: ["customer"])
            let cora = try await server.connect(as: "cora", password: "cora-password")
            let coraSees = try await cora.request("HELP").data.compactMap { JSONValue(parsing: $0)?["command"].text }
            #expect(coraSees.contains("ORDER SHOW") && Set(staffOnly).isDisjoint(with: coraSees), "\(coraSees)")
            #expect(try await cora.request("HELP APPROVAL SHOW").errorCode == "NOT_FOUND")
            #expect(try await cora.request("APPROVAL SHOW 1").final == "-FORBIDDEN approvals are internal: ORDER SHOW shows the order's status")
            await cora.close()
            await sara.close()
            await client.close()
        }
    }

    /// A time without an offset is UTC, whatever time zone the database defaults to (here New
    /// York's, which would read 12:00 as 17:00 UTC).
    @Test func aTimeWithoutAnOffsetIsUTCWhateverTheDatabaseSays() async throws {
        try await withTestServer(prepare: { database in
            _ = try await database.execute("DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET timezone = %L', current_database(), 'America/New_York'); END $$")
            try await database.createUser("sam", password: "sam-password", roles: ["sales_manager"])
            try await database.createUser("sue", password: "sue-password", roles: ["sales_manager"])
            _ = try await database.execute("SELECT admin.set_approval_limit('sales_manager', 'standard', NULL)")
        }) { server in
            let sam = try await server.connect(as: "sam", password: "sam-password")
            // Noon, next month (a delegation lasts at most a year).
            let day = try #require(try await server.database.execute(
                "SELECT to_char((now() AT TIME ZONE 'UTC')::date + 30, 'YYYY-MM-DD')").scalar)
            let reply = try await sam.request("DELEGATE to=sue until=\(day)T12:00:00")
            #expect(reply.isSuccess && reply.data.first?.contains(#""ends_at":"\#(day)T12:00:00.000000Z""#) == true, "\(reply.final) \(reply.data)")
            await sam.close()
        }
    }

    @Test func malformedLinesGetAnErrorAndTheConnectionStays() async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            let bad: [[UInt8]] = [
                Array("AUTH \"unterminated\n".utf8),
                [0x50, 0x49, 0x00, 0x4E, 0x47, 0x0A],          // NUL
                [0x50, 0xC3, 0x28, 0x0A],                      // invalid UTF-8
                Array("X lines=[{\"a\":1}\n".utf8),             // unbalanced JSON
                Array("\n".utf8),                              // empty line
                Array("   \r\n".utf8),                         // blank line
            ]
            for line in bad {
                try await client.sendRaw(line)
                let response = try await client.readResponse()
                #expect(response.errorCode == "BAD_SYNTAX", "for \(line)")
            }
            #expect(try await client.request("PING").final == "+PONG")
            await client.close()
        }
    }

    @Test func anOverLongLineIsDiscardedAndAnswered() async throws {
        try await withTestServer(configure: { $0.limits.maxLineBytes = 1024 }) { server in
            let client = try await server.connect()
            // Sent in pieces, as a slow client would, then the next request in the same write.
            try await client.sendRaw(Array(repeating: UInt8(ascii: "A"), count: 3000))
            try await client.sendRaw(Array(repeating: UInt8(ascii: "B"), count: 3000) + Array("\nPING\n".utf8))
            #expect(try await client.readResponse().errorCode == "LINE_TOO_LONG")
            #expect(try await client.readResponse().final == "+PONG")
            // Exactly at the limit is fine.
            let atLimit = "PING" + String(repeating: " ", count: 1020)
            #expect(try await client.request(atLimit).final == "+PONG")
            #expect(try await client.request(atLimit + " ").errorCode == "LINE_TOO_LONG")
            await client.close()
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        try await withTestServer { server in
            try await server.database.createUser("ivy", password: "ivy-password", roles: [])
            let client = try await server.connect()
            var burst = "AUTH ivy ivy-password\r\n"
            for i in 0..<100 { burst += i % 10 == 0 ? "WHOAMI\n" : "PING\n" }
            burst += "NOPE\n"
            try await client.sendRaw(Array(burst.utf8))
            #expect(try await client.readResponse().isSuccess)
            for i in 0..<100 {
                let response = try await client.readResponse()
                if i % 10 == 0 {
                    #expect(response.data.count == 1 && response.isSuccess)
                } else {
                    #expect(response.final == "+PONG")
                }
            }
            #expect(try await client.readResponse().errorCode == "UNKNOWN_COMMAND")
            await client.close()
        }
    }

    /// A client that sends its requests and then closes its sending side (`nc -N`, a script's
    /// shutdown) still gets every reply, and what it asked for is done; then the server closes.
    @Test func aClientThatClosesItsSendingSideGetsEveryReply() async throws {
        try await withTestServer { server in
            try await server.database.createUser("ivy", password: "ivy-password", roles: [])
            let client = try await RawClient.connect(port: server.port, reading: true)
            try await client.write(Array("PING\nAUTH ivy ivy-password\nWHOAMI\nPING\n".utf8)).get()
            try await client.channel.close(mode: .output)
            try await waitUntil("the server closes once it has answered") { client.isClosed }
            let lines = client.text.split(separator: "\n").map(String.init)
            #expect(lines.first?.hasPrefix("#orderly ") == true, "\(lines)")
            #expect(lines.filter { $0.hasPrefix("+") || $0.hasPrefix("-") }
                        == ["+PONG", "+OK authenticated as ivy", "+OK 1 row", "+PONG"], "\(lines)")
            #expect(lines.contains { $0.hasPrefix("*") && $0.contains("ivy") }, "WHOAMI's data line: \(lines)")
        }
    }

    @Test func aPingBehindASlowRequestWaitsForItsReply() async throws {
        try await withTestServer(table: ShutdownTests.slowTable, prepare: ShutdownTests.createSlowFunction) { server in
            try await server.database.createUser("ivy", password: "ivy-password", roles: [])
            let client = try await server.connect(as: "ivy", password: "ivy-password")
            // PING is answered on the event loop when nothing else is in flight; here something is.
            try await client.sendRaw(Array("SLOW\nPING\nSLOW\nping \nPING\n".utf8))
            for _ in 0..<2 {
                let slow = try await client.readResponse()
                #expect(slow.data == [#"{"slept":true}"#] && slow.final == "+OK 1 row", "\(slow)")
                #expect(try await client.readResponse().final == "+PONG")
            }
            #expect(try await client.readResponse().final == "+PONG")
            #expect(try await client.request("PING").final == "+PONG", "answered again once nothing is in flight")
            await client.close()
        }
    }

    @Test func quitClosesTheConnection() async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            #expect(try await client.request("QUIT").final == "+OK bye")
            #expect(try await client.nextLine() == nil)
        }
    }

    @Test func shutdownSaysByeToOpenSessions() async throws {
        try await withTestDatabase { database in
            let configuration = ServerConfiguration(host: "127.0.0.1", port: 0, database: database.config, poolSize: 1)
            let server = try await OrderlyServer.start(configuration)
            let client = try await OrderlyConnection.connect(host: "127.0.0.1", port: server.port)
            await server.shutdown()
            #expect(try await client.nextLine() == "#bye")
            #expect(try await client.nextLine() == nil)
        }
    }
}
