import Foundation
import OrderlyClient
import OrderlyTestSupport
import Testing

/// `orderly [options] COMMAND…` against a real server.
@Suite struct OneShotTests {
    @Test func whoamiIsATable() async throws {
        try await withTestServer { server in
            try await server.database.createUser("alice", password: "alice-password", roles: [])
            let json = try await CLI.run(["--port", "\(server.port)", "--user", "alice", "--json", "WHOAMI"], environment: ["ORDERLY_PASSWORD": "alice-password"])
            #expect(json.status == 0)
            #expect(json.stderr == "+OK 1 row\n")
            let row = try #require(JSONValue(parsing: json.stdout))
            guard case .object(let members) = row, case .number(let id)? = members.first(where: { $0.key == "user_id" })?.value else {
                Issue.record("not a WHOAMI row: \(json.stdout)")
                return
            }
            #expect(json.stdout.hasPrefix(#"{"user_id":"#) && json.stdout.hasSuffix("}\n"), "raw JSON, as the server sent it")

            let table = try await CLI.run(["--port", "\(server.port)", "--user", "alice", "WHOAMI"], environment: ["ORDERLY_PASSWORD": "alice-password"])
            #expect(table.status == 0)
            #expect(table.stderr == "+OK 1 row\n")
            let pad = String(repeating: " ", count: 7 - id.count)
            // server_time (the database's clock) changes from run to run.
            let lines = table.stdout.split(separator: "\n").map(String.init)
            #expect(lines.count == 3)
            #expect(lines.first == "user_id  username  display_name  roles  permissions  server_time")
            #expect(lines.dropFirst().first == "-------  --------  ------------  -----  -----------  " + String(repeating: "-", count: 27))
            #expect(lines.last?.hasPrefix("\(id)\(pad)  alice     alice         []     []           20") == true, "\(table.stdout)")
        }
    }

    @Test func helpBeforeAuthIsATable() async throws {
        try await withTestServer { server in
            let result = try await CLI.run(["--port", "\(server.port)", "HELP"])
            #expect(result.status == 0)
            #expect(result.stderr == "+OK 5 commands\n")
            #expect(result.stdout == """
                command  usage                   permission  summary
                -------  ----------------------  ----------  -------------------------------------------------------------------------------------------
                HELLO    HELLO                               Server name, version, protocol and limits.
                AUTH     AUTH username password              Log in. Quote a password with spaces as a JSON string: AUTH alice "my secret".
                PING     PING                                Answers +PONG.
                HELP     HELP [command]                      The commands you may run now, those starting with a word (HELP ORDER), or the usage of one.
                QUIT     QUIT                                Close the connection.

                """)
        }
    }

    @Test func aFailedLoginExitsWithOne() async throws {
        try await withTestServer { server in
            try await server.database.createUser("bob", password: "bob-password", roles: [])
            let result = try await CLI.run(["--port", "\(server.port)", "--user", "bob", "WHOAMI"], environment: ["ORDERLY_PASSWORD": "wrong-password"])
            #expect(result.status == 1)
            #expect(result.stdout == "")
            #expect(result.stderr == "-AUTH_FAILED invalid username or password\n")
        }
    }

    @Test func anErrorReplyExitsWithOneAndNoRowsPrintNothing() async throws {
        try await withTestServer { server in
            let noauth = try await CLI.run(["--port", "\(server.port)", "WHOAMI"])
            #expect(noauth.status == 1)
            #expect(noauth.stdout == "")
            #expect(noauth.stderr.hasPrefix("-NOAUTH "))
            let ping = try await CLI.run(["--port", "\(server.port)", "PING"])
            #expect(ping.status == 0)
            #expect(ping.stdout == "")
            #expect(ping.stderr == "+PONG\n")
        }
    }

    @Test func nothingListeningExitsWithTwo() async throws {
        let port = try FreePort.find()
        let result = try await CLI.run(["--port", "\(port)", "PING"])
        #expect(result.status == 2)
        #expect(result.stdout == "")
        #expect(result.stderr == "orderly: cannot connect to 127.0.0.1:\(port): Connection refused\n")
    }
}
