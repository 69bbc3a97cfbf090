import ArgumentParser
import Foundation
import NIOPosix
import PostgresClient

/// `seed`: fills a migrated Orderly database (with the demo catalog) with customers and orders,
/// set-based, by running `bench/seed.sql`. Every value reaches the SQL as a parameter (through
/// `set_config`), never as text pasted into a statement.
struct Seed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fill a database with customers (with addresses) and orders, set-based SQL.",
        discussion: """
            Customers spread over segments and regions (DE, FR, AT, US); orders over customers \
            (a few order much more), 2 years of dates, statuses (draft, approved, rejected) and \
            the catalog: each is a copy of one of 60 template orders priced by the real pricing \
            function, so totals always equal the sum of the lines. Orders are created by \
            --created-by, so that user (a sales rep) sees them all.
            """)

    @Option(name: .customLong("database-url"), help: "PostgreSQL URL (a superuser, e.g. postgres) of a migrated Orderly database.")
    var databaseURL: String
    @Option(help: "Customers to create.") var customers = 1000
    @Option(help: "Orders to create.") var orders = 10000
    @Option(help: "Orders per transaction.") var batch = 100_000
    @Option(help: "Username the orders are created by.") var createdBy = "sales_rep"
    @Option(help: "The seed SQL file.") var sql = "bench/seed.sql"
    @Flag(help: "Print progress only as one JSON line at the end.") var json = false

    func run() async throws {
        guard customers >= 1, orders >= 0, batch >= 1 else { throw ValidationError("--customers ≥ 1, --orders ≥ 0, --batch ≥ 1") }
        let script = try String(contentsOfFile: sql, encoding: .utf8)
        guard let marker = script.range(of: "\n-- @batch\n") else { throw ValidationError("\(sql) has no '-- @batch' section") }
        let once = String(script[..<marker.lowerBound])
        let perBatch = String(script[marker.upperBound...])
        let (url, customers, orders, batch, createdBy, json) = (databaseURL, customers, orders, batch, createdBy, json)
        let started = Date()
        try await NIOThreadPool.singleton.runIfActive {
            let db = try Connection(config: ConnectionConfig(url: url, applicationName: "orderly-bench seed"))
            defer { db.close() }
            func set(_ name: String, _ value: String) throws {
                try db.queryOnce("SELECT set_config($1, $2, false)", [name, value])
            }
            try set("bench.customers", String(customers))
            try set("bench.created_by", createdBy)
            try db.executeScript(once)
            if !json { print("seed: \(customers) customers and templates in \(Self.elapsed(started))") }
            var done = 0
            while done < orders {
                let size = min(batch, orders - done)
                try set("bench.batch_orders", String(size))
                try db.executeScript(perBatch)
                done += size
                if !json { print("seed: \(done)/\(orders) orders in \(Self.elapsed(started))") }
            }
            try db.executeScript("ANALYZE orderly.customers; ANALYZE orderly.addresses; ANALYZE orderly.orders; "
                                 + "ANALYZE orderly.order_lines; ANALYZE orderly.order_status_history")
        }
        let seconds = Date().timeIntervalSince(started)
        if json {
            print("{\"customers\":\(customers),\"orders\":\(orders),\"seconds\":\(String(format: "%.1f", seconds))}")
        } else {
            print("seed: done in \(Self.elapsed(started))")
        }
    }

    static func elapsed(_ since: Date) -> String { String(format: "%.1f s", Date().timeIntervalSince(since)) }
}
