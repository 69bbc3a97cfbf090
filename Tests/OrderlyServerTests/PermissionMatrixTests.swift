import Foundation
import OrderlyClient
import OrderlyProtocol
import OrderlyStore
import OrderlyTestSupport
import PostgresClient
import Testing

/// The whole permission matrix, every seeded role × every command, from the README's table of
/// roles and their permissions (the source users read) and each command's permission (the
/// registry). The table must equal the roles the migrations seed, so that a change to either
/// without the other fails here; then every role's demo user must be refused exactly the
/// commands it lacks the permission for — by orderlyd, and by the database function itself.
@Suite struct PermissionMatrixTests {
    static func readme() throws -> String {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("README.md")
        return try String(contentsOf: path, encoding: .utf8)
    }

    /// The commands the README says customer logins are refused whatever their permissions.
    static func refusedToCustomers() throws -> Set<String> {
        let text = try readme()
        let sentence = try #require(text.components(separatedBy: "Customer logins are refused, whatever their permissions:").dropFirst().first?
            .components(separatedBy: "\n\n").first)
        // The commands named outside the parenthesised explanations.
        return Set(sentence.replacing(/\([^)]*\)/, with: "").matches(of: /`([A-Z][A-Z ]*[A-Z])`/).map { String($0.1) })
    }

    /// The README's "seeded roles and what they may do" table: role → permissions.
    static func readmeMatrix() throws -> [String: Set<String>] {
        let text = try readme()
        let table = try #require(text.components(separatedBy: "| role | permissions |").dropFirst().first?.components(separatedBy: "\n\n").first)
        var matrix: [String: Set<String>] = [:]
        for match in table.matches(of: /\n\| `([a-z_]+)` \| ([^\n]*) \|/) {
            matrix[String(match.1)] = Set(match.2.matches(of: /`([a-z_.]+)`/).map { String($0.1) })
        }
        return matrix
    }

    @Test func everyRoleIsAllowedExactlyTheCommandsItsPermissionsCover() async throws {
        let documented = try Self.readmeMatrix()
        let customerExceptions = try Self.refusedToCustomers()
        #expect(customerExceptions == ["APPROVAL SHOW", "CUSTOMER CREATE"], "\(customerExceptions)")
        #expect(documented.count >= 12, "the README's table was not found whole: \(documented.keys.sorted())")
        try await withTestServer(prepare: { database in
            _ = try await database.execute("SELECT count(*) FROM admin.create_demo_users()")
        }) { server in
            // The table is the seeded truth, both ways.
            let seeded = try await server.database.execute("""
                SELECT r.name, coalesce(string_agg(rp.permission, ',' ORDER BY rp.permission), '')
                FROM orderly.roles r LEFT JOIN orderly.role_permissions rp ON rp.role_id = r.id GROUP BY r.name
                """).rows
            var actual: [String: Set<String>] = [:]
            for row in seeded {
                actual[row[0]!] = Set(row[1]!.split(separator: ",").map(String.init))
            }
            #expect(actual == documented, "README table and seeded roles differ")

            let commands = try await onThread { try RegisteredCommands.load(server.database.config) } + CommandTable.standard.commands
            var clients: [String: OrderlyConnection] = [:]
            for role in documented.keys.sorted() {
                clients[role] = try await server.connect(as: role, password: "\(role)-demo")
            }
            var mismatches: [String] = []
            for command in commands where !command.beforeAuth {
                for (role, permissions) in documented.sorted(by: { $0.key < $1.key }) {
                    let allowed = (command.permission.map { permissions.contains($0) } ?? true)
                        && !(role == "customer" && customerExceptions.contains(command.name))
                    // No arguments: a permitted command fails on its arguments (or runs, if it
                    // needs none); a refused one never gets that far.
                    let reply = try await clients[role]!.request(command.name)
                    if (reply.errorCode == "FORBIDDEN") == allowed {
                        mismatches.append("\(role) \(command.name): \(reply.final)")
                    }
                    guard case .sql(let function) = command.action else { continue }
                    // The database's own check, without the server in front of it.
                    var refused = false
                    do {
                        _ = try await server.database.execute(
                            "SELECT * FROM \(function)((SELECT id FROM orderly.users WHERE username = $1), '{}')", [role])
                    } catch let error as PostgresError {
                        refused = error.sqlState == "OL403"
                    }
                    if refused == allowed {
                        mismatches.append("\(role) \(function) in the database: \(refused ? "refused" : "allowed")")
                    }
                }
            }
            #expect(mismatches.isEmpty, "\(mismatches.joined(separator: "\n"))")
            for client in clients.values { await client.close() }
        }
    }
}
