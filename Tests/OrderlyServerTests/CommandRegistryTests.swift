import Foundation
import OrderlyClient
import OrderlyProtocol
import OrderlyServer
import OrderlyStore
import OrderlyTestSupport
import PostgresClient
import Testing

/// The registry in PostgreSQL is the server's list of commands: a command added there is served,
/// listed, guarded and checked with no Swift change; every registered command refuses an
/// argument it does not list; the README's reference is what the registry says.
@Suite struct CommandRegistryTests {
    /// A throw-away command, written the way sql/ writes every command: a function whose first
    /// statement is orderly.begin_command, and its registry row beside it.
    static let echoCommand = ["""
        CREATE FUNCTION api.test_echo(actor bigint, args jsonb) RETURNS SETOF json
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        DECLARE
            u orderly.users := orderly.begin_command('TEST ECHO', test_echo.actor, test_echo.args);
        BEGIN
            RETURN NEXT json_build_object('said', args ->> 'text', 'times', coalesce((args ->> 'times')::int, 1), 'by', u.username);
        END $$
        """, """
        SELECT orderly.register_command('TEST ECHO', 'api.test_echo', 'catalog.manage',
            arguments  => 'text:text! times:integer',
            positional => '{text}',
            usage      => 'TEST ECHO text [times=1]',
            summary    => 'Says it back (tests only).')
        """]

    static func addEchoCommand(_ database: TestDatabase) async throws {
        for statement in echoCommand { try await database.execute(statement) }
    }

    @Test func aCommandAddedInSQLIsServedListedGuardedAndCheckedWithoutASwiftChange() async throws {
        try await withTestServer { server in
            try await server.database.createUser("cathy", password: "cathy-password", roles: ["production_manager"])
            try await server.database.createUser("walt", password: "walt-password", roles: ["sales_rep"])
            let cathy = try await server.connect(as: "cathy", password: "cathy-password")
            let walt = try await server.connect(as: "walt", password: "walt-password")
            #expect(try await cathy.request("TEST ECHO hi").errorCode == "UNKNOWN_COMMAND")

            // Registered while the server runs: NOTIFY orderly_commands makes it reload.
            try await Self.addEchoCommand(server.database)
            try await waitUntil("TEST ECHO is listed") { try await cathy.request("HELP").data.joined().contains("TEST ECHO") }

            let help = try await cathy.request("HELP test echo")
            #expect(help.data == [#"{"command":"TEST ECHO","usage":"TEST ECHO text [times=1]","permission":"catalog.manage","summary":"Says it back (tests only)."}"#])
            let echo = try await cathy.request("TEST ECHO hello times=2")
            #expect(echo.data == [#"{"said":"hello","times":2,"by":"cathy"}"#] && echo.final == "+OK 1 row", "\(echo)")

            let unknown = try await cathy.request("TEST ECHO hello tims=2")
            #expect(unknown.errorCode == "INVALID")
            #expect(unknown.final == #"-INVALID unknown argument "tims"; expected one of: text, times"#)

            // walt's role lacks catalog.manage: refused by the server, not listed by HELP.
            #expect(try await walt.request("TEST ECHO hello").errorCode == "FORBIDDEN")
            #expect(try await !walt.request("HELP").data.joined().contains("TEST ECHO"))
            // ... and refused by the database too, whoever calls the function.
            do {
                try await server.database.execute(
                    "SELECT * FROM api.test_echo((SELECT id FROM orderly.users WHERE username = 'walt'), '{\"text\":\"hi\"}')")
                Issue.record("the function ran for a user without its permission")
            } catch let error as PostgresError {
                #expect(error.sqlState == "OL403")
            }
            await cathy.close()
            await walt.close()
        }
    }

    @Test func aCommandRegisteredBeforeTheServerStartsIsServed() async throws {
        try await withTestServer(prepare: Self.addEchoCommand) { server in
            try await server.database.createUser("cathy", password: "cathy-password", roles: ["production_manager"])
            let cathy = try await server.connect(as: "cathy", password: "cathy-password")
            #expect(try await cathy.request("TEST ECHO hello").data == [#"{"said":"hello","times":1,"by":"cathy"}"#])
            await cathy.close()
        }
    }

    @Test func everyRegisteredCommandRefusesAnUnknownArgument() async throws {
        try await withTestServer { server in
            let roles = try await server.database.execute("SELECT string_agg(name, ',') FROM orderly.roles WHERE name <> 'customer'").scalar ?? ""
            try await server.database.createUser("root", password: "root-password", roles: roles.split(separator: ",").map(String.init))
            let client = try await server.connect(as: "root", password: "root-password")
            let registered = try await onThread { [config = server.database.config] in
                try RegisteredCommands.load(config)
            }
            // The registry is what is walked: a command added later is covered without a change here.
            #expect(Set(registered.map(\.name)).isSuperset(of: ["WHOAMI", "ORDER CREATE", "PRODUCT PRICE", "TAX SET", "DELEGATE LIST"]))
            var wrong: [String] = []
            for command in registered {
                let reply = try await client.request("\(command.name) bogus_argument=1")
                if reply.errorCode != "INVALID" || reply.final.contains(#"unknown argument "bogus_argument""#) == false {
                    wrong.append("\(command.name): \(reply.final)")
                }
            }
            // The built-in commands refuse one too (AUTH checks its own shape: see AuthTests).
            for command in CommandTable.standard.commands where command.name != "AUTH" {
                let reply = try await client.request("\(command.name) bogus_argument=1")
                if reply.errorCode != "INVALID" || reply.final.contains(#"unknown argument "bogus_argument""#) == false {
                    wrong.append("\(command.name): \(reply.final)")
                }
            }
            #expect(wrong == [])
            // Those that take no words refuse a word; QUIT with one does not close the connection.
            for name in ["HELLO", "PING", "QUIT", "STATS"] {
                #expect(try await client.request("\(name) now").final == "-BAD_SYNTAX \(name) takes no arguments")
            }
            #expect(try await client.request("PING").final == "+PONG")
            await client.close()
        }
    }

    @Test func theReadmeCommandReferenceIsTheRegistry() async throws {
        try await withTestDatabase { database in
            let registered = try await onThread { [config = database.config] in
                try RegisteredCommands.load(config)
            }
            let readme = try String(contentsOfFile: Self.repositoryRoot + "/README.md", encoding: .utf8)
            let committed = try #require(CommandReference.section(of: readme), "README.md has no command reference markers")
            #expect(committed == CommandReference.markdown(CommandTable.standard.adding(registered)),
                    "README.md's command reference differs from the registry: run `make readme` and commit README.md")
        }
    }

    static var repositoryRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }
}
