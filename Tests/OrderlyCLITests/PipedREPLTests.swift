import OrderlyTestSupport
import Testing

/// `orderly` without a command and with stdin not a terminal: commands from stdin, one per line.
@Suite struct PipedREPLTests {
    @Test func commandsFromStdinAreAnsweredInOrder() async throws {
        try await withTestServer { server in
            try await server.database.createUser("carol", password: "carol-password", roles: [])
            let result = try await CLI.run(
                ["--port", "\(server.port)", "--user", "carol"], stdin: "PING\n\n  help whoami  \nNOPE\nquit\nPING\n",
                environment: ["ORDERLY_PASSWORD": "carol-password"])
            #expect(result.status == 0)
            #expect(result.stderr == "")
            #expect(result.stdout == """
                +PONG
                command  usage   permission  summary
                -------  ------  ----------  ---------------------------------------------------
                WHOAMI   WHOAMI              Your username, display name, roles and permissions.
                +OK 1 command
                -UNKNOWN_COMMAND unknown command 'NOPE'; HELP lists the commands

                """)
        }
    }

    @Test func authTypedAtThePromptAndJSONOutput() async throws {
        try await withTestServer { server in
            try await server.database.createUser("dave", password: "dave password", roles: [])
            let result = try await CLI.run(["--port", "\(server.port)", "--json"], stdin: "WHOAMI\nAUTH dave \"dave password\"\nHELP whoami\n")
            #expect(result.status == 0)
            #expect(result.stdout == """
                -NOAUTH authenticate first: AUTH username password
                +OK authenticated as dave
                {"command":"WHOAMI","usage":"WHOAMI","permission":null,"summary":"Your username, display name, roles and permissions."}
                +OK 1 command

                """)
        }
    }
}
