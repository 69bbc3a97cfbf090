import Foundation
import OrderlyClient
import OrderlyTestSupport
import Testing

/// `orderly-bench` against a real server: it loads, counts and reports, and what it reports
/// matches what the database holds.
@Suite struct BenchTests {
    static var binary: URL { CLI.binary.deletingLastPathComponent().appendingPathComponent("orderly-bench") }

    static func run(_ arguments: [String]) async throws -> [String: Any] {
        try await runWithStatus(arguments).json
    }

    /// The JSON the bench printed last, and its exit status.
    static func runWithStatus(_ arguments: [String]) async throws -> (json: [String: Any], status: Int32) {
        let result = try await Program.run(binary.path, arguments)
        let line = result.stdout.split(separator: "\n").last.map(String.init) ?? ""
        return ((try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) ?? [:], result.status)
    }

    @Test func pingAndCreateReportWhatTheServerDid() async throws {
        try await withTestServer { server in
            try await server.database.createUser("sales_rep", password: "sales_rep-demo", roles: ["sales_rep"])
            try await server.database.execute("SELECT * FROM admin.load_demo_catalog()")
            try await server.database.execute("SELECT admin.load_demo_customer()")
            let common = ["--port", "\(server.port)", "--connections", "2", "--duration", "1", "--warmup", "0", "--json"]

            let ping = try await Self.run(["ping"] + common)
            #expect(ping["scenario"] as? String == "ping")
            #expect((ping["requests"] as? Int ?? 0) > 0, "\(ping)")
            #expect(ping["error_count"] as? Int == 0, "\(ping)")

            let create = try await Self.run(["create"] + common + ["--database-url", server.database.conninfo])
            let created = create["requests"] as? Int ?? 0
            #expect(created > 0, "\(create)")
            #expect(create["error_count"] as? Int == 0, "\(create)")
            // Every counted request is an order in the database (the bench may have one more in
            // flight when the measured window closed, and none before it: no warm-up).
            let orders = Int(try await server.database.execute("SELECT count(*) FROM orderly.orders").scalar ?? "") ?? -1
            #expect(orders >= created && orders <= created + 2, "\(orders) orders for \(created) requests")
        }
    }

    /// A flash sale: every order is one unit of the one SKU asked for, and the SKU's reservations
    /// grew by exactly the orders it made (nothing oversold, nothing lost).
    @Test func flashOrdersOneUnitOfOneSKU() async throws {
        try await withTestServer { server in
            try await server.database.createUser("sales_rep", password: "sales_rep-demo", roles: ["sales_rep"])
            try await server.database.execute("SELECT * FROM admin.load_demo_catalog()")
            try await server.database.execute("SELECT admin.load_demo_customer()")
            let sku = try #require(try await server.database.execute(
                "SELECT code FROM orderly.skus WHERE code LIKE 'PHN-S2-%' ORDER BY code LIMIT 1").scalar)
            let flash = try await Self.run(["flash", "--port", "\(server.port)", "--connections", "4", "--duration", "1",
                                            "--warmup", "0", "--json", "--database-url", server.database.conninfo, "--sku", sku])
            #expect(flash["scenario"] as? String == "flash")
            let created = flash["requests"] as? Int ?? 0
            #expect(created > 0 && flash["error_count"] as? Int == 0, "\(flash)")
            let check = try await server.database.execute("""
                SELECT count(DISTINCT o.id), count(*) FILTER (WHERE s.code <> $1 OR l.qty <> 1), s2.stock_reserved, sum(l.qty)
                FROM orderly.orders o JOIN orderly.order_lines l ON l.order_id = o.id JOIN orderly.skus s ON s.id = l.sku_id
                CROSS JOIN (SELECT stock_reserved FROM orderly.skus WHERE code = $1) s2
                GROUP BY s2.stock_reserved
                """, [sku]).rows.first
            let orders = Int(check?[0] ?? "") ?? -1
            #expect(orders >= created && orders <= created + 4, "\(orders) orders for \(created) requests")
            #expect(check?[1] == "0", "every line one unit of \(sku)")
            #expect(check?[2] == check?[3], "reserved \(check?[2] ?? "?") for \(check?[3] ?? "?") units ordered")
        }
    }

    /// Every connection the server admits is logged in, held and PINGed; the ones it refuses are
    /// reported and fail the run; the server's memory is read from /proc (the server runs in
    /// this very process).
    @Test func idleHoldsLoggedInConnectionsAndReportsRefusals() async throws {
        // 13: room for the 12 of the bench and the admin who watches the open connections.
        try await withTestServer(configure: { $0.maxConnections = 13 }) { server in
            try await server.database.createUser("sales_rep", password: "sales_rep-demo", roles: ["sales_rep"])
            try await server.database.createUser("watcher", password: "watcher-pass", roles: ["admin"])
            let watcher = try await server.connect(as: "watcher", password: "watcher-pass")
            let common = ["idle", "--port", "\(server.port)", "--hold", "0.5", "--concurrency", "8", "--json",
                          "--server-pid", "\(ProcessInfo.processInfo.processIdentifier)"]

            let all = try await Self.runWithStatus(common + ["--connections", "12"])
            #expect(all.status == 0, "\(all.json)")
            #expect(all.json["logged_in"] as? Int == 12, "\(all.json)")
            #expect(all.json["served"] as? Int == 12, "\(all.json)")
            #expect(all.json["error_count"] as? Int == 0, "\(all.json)")
            let memory = all.json["server"] as? [String: Any] ?? [:]
            #expect((memory["rss_kib_after_hold"] as? Int ?? 0) > 0, "\(all.json)")
            #expect((memory["hwm_kib"] as? Int ?? 0) >= (memory["rss_kib_after_hold"] as? Int ?? 0), "\(all.json)")

            // The server lets go of the first run's connections once it has read their close.
            for _ in 0..<100 {
                let stats = try await watcher.request("STATS").data.first ?? ""
                if stats.contains(#""open":1,"#) { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            let over = try await Self.runWithStatus(common + ["--connections", "20"])
            #expect(over.status == 1, "\(over.json)")
            #expect(over.json["logged_in"] as? Int == 12, "\(over.json)")
            #expect(over.json["served"] as? Int == 12, "\(over.json)")
            #expect((over.json["errors"] as? [String: Int]) == ["BUSY": 8], "\(over.json)")
            await watcher.close()
        }
    }
}
