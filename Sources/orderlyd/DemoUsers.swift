import NIOPosix
import PostgresClient

/// `--demo`: one user per seeded role, so that a first-time user can log in straight away.
enum DemoUsers {
    static func create(_ config: ConnectionConfig) async throws {
        let rows = try await NIOThreadPool.singleton.runIfActive {
            let connection = try Connection(config: config)
            defer { connection.close() }
            return try connection.queryOnce("SELECT username, password, role FROM admin.create_demo_users() ORDER BY role").rows
        }
        var text = "Demo users (username / password):\n"
        let width = rows.map { ($0[0] ?? "").count }.max() ?? 0
        for row in rows {
            let username = row[0] ?? ""
            text += "  \(username.padding(toLength: width, withPad: " ", startingAt: 0))  \(row[1] ?? "")\n"
        }
        Console.say(text, terminator: "")
    }
}
