import NIOPosix
import PostgresClient

/// `--demo`: one user per seeded role, the demo catalog, the classic approval rules and a demo
/// customer (linked to the `customer` login), so that a first-time user can log in and order
/// straight away.
enum DemoUsers {
    static func create(_ config: ConnectionConfig) async throws {
        let (rows, customer) = try await NIOThreadPool.singleton.runIfActive {
            let connection = try Connection(config: config)
            defer { connection.close() }
            let users = try connection.queryOnce("SELECT username, password, role FROM admin.create_demo_users() ORDER BY role").rows
            _ = try connection.queryOnce("SELECT * FROM admin.load_demo_catalog()")
            // The demo carrier login posts tracking events for DHL's shipments.
            _ = try connection.queryOnce("SELECT admin.set_user_carrier('carrier', 'dhl')")
            _ = try connection.queryOnce("SELECT * FROM admin.load_demo_approvals()")
            let customer = try connection.queryOnce("SELECT admin.load_demo_customer()").rows.first?.first ?? nil
            return (users, customer)
        }
        var text = "Demo users (username / password):\n"
        let width = rows.map { ($0[0] ?? "").count }.max() ?? 0
        for row in rows {
            let username = row[0] ?? ""
            text += "  \(username.padding(toLength: width, withPad: " ", startingAt: 0))  \(row[1] ?? "")\n"
        }
        text += "Demo catalog and approval rules loaded (CATALOG lists the products); demo customer id \(customer ?? "?") with a default address.\n"
        Console.say(text, terminator: "")
    }
}
