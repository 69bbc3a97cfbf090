import Foundation
import NIOPosix
import OrderlyTestSupport
import PostgresClient
import Testing

/// The verifier of the crash-consistency check (`scripts/crash-check.sh`, run by `make test` after
/// `swift test`): the real orderlyd and orderly-bench binaries against a test database. A clean run
/// passes; each kind of damage is reported, so the check can fail.
@Suite struct CrashConsistencyTests {
    static var bench: String {
        URL(fileURLWithPath: Daemon.executable).deletingLastPathComponent().appendingPathComponent("orderly-bench").path
    }

    /// Runs orderly-bench with `arguments`: (exit status, stdout and stderr).
    static func runBench(_ arguments: [String]) async throws -> (Int32, String) {
        guard FileManager.default.isExecutableFile(atPath: bench) else {
            throw TestFailure("build orderly-bench first (swift build --build-tests): \(bench)")
        }
        let result = try await Program.run(bench, arguments)
        return (result.status, result.stdout + result.stderr)
    }

    /// Runs statements on one connection of its own (so that a SET holds for what follows).
    static func onOneConnection(_ database: TestDatabase, _ body: @escaping @Sendable (Connection) throws -> Void) async throws {
        let config = database.config
        try await NIOThreadPool.singleton.runIfActive {
            let connection = try Connection(config: config)
            defer { connection.close() }
            try body(connection)
        }
    }

    @Test func verifierPassesARealRunAndReportsEveryKindOfDamage() async throws {
        try await withTestDatabase { database in
            let daemon = try await Daemon(database: database, arguments: ["--demo"])
            defer { daemon.stop() }
            let url = Daemon.url(database)
            let file = TemporaryFiles.path("orderly-acks", suffix: ".tsv")
            defer { try? FileManager.default.removeItem(atPath: file) }

            let (created, createOutput) = try await Self.runBench([
                "create", "--port", String(daemon.port), "--connections", "2", "--duration", "1", "--warmup", "0",
                "--database-url", url, "--verify", file])
            #expect(created == 0, "\(createOutput)")
            let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n")
            #expect(!lines.isEmpty, "\(createOutput)")
            #expect(createOutput.contains("acknowledged \(lines.count)"), "\(createOutput)")
            let firstOrder = String(lines[0].split(separator: "\t")[1]), lastOrder = String(lines[lines.count - 1].split(separator: "\t")[1])

            let verify = ["verify", "--database-url", url, "--file", file]
            let (clean, cleanOutput) = try await Self.runBench(verify)
            #expect(clean == 0, "\(cleanOutput)")
            #expect(cleanOutput.contains("verify: \(lines.count) acknowledged orders"), "\(cleanOutput)")
            #expect(cleanOutput.contains("OK, no violations"), "\(cleanOutput)")

            // Each step damages something more; verify must fail and name the new damage.
            func expectViolation(_ check: String, _ detail: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
                let (status, output) = try await Self.runBench(verify)
                #expect(status == 1, "\(output)", sourceLocation: sourceLocation)
                #expect(output.contains("verify: FAILED"), "\(output)", sourceLocation: sourceLocation)
                #expect(output.contains("  \(check): "), "\(output)", sourceLocation: sourceLocation)
                #expect(output.contains(detail), "\(output)", sourceLocation: sourceLocation)
            }

            // An acknowledged order that never reached the database.
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data("bench-never-committed-1\t\(lastOrder)\t10.00\n".utf8))
            try handle.close()
            try await expectViolation("acknowledged order lost", "key bench-never-committed-1 (order \(lastOrder)): no idempotency key")
            try await expectViolation("one order for several keys", "order \(lastOrder) acknowledged for 2 keys")

            // An acknowledged order deleted behind everyone's back (replica role: no FK, no trigger).
            try await Self.onOneConnection(database) { connection in
                try connection.executeScript("SET session_replication_role = replica")
                try connection.query("DELETE FROM orderly.orders WHERE id = $1::bigint", [firstOrder])
            }
            try await expectViolation("acknowledged order lost", "order \(firstOrder) does not exist")

            // A header total that no longer matches its lines (nor what was acknowledged).
            try await database.execute("UPDATE orderly.orders SET total = total + 1 WHERE id = $1::bigint", [lastOrder])
            try await expectViolation("total differs from lines", "order \(lastOrder): subtotal")
            try await expectViolation("acknowledged order differs", "order \(lastOrder) has total")

            // A line whose stored pricing is gone (the table is append-only: replica role, no trigger).
            try await Self.onOneConnection(database) { connection in
                try connection.executeScript("SET session_replication_role = replica")
                try connection.query("""
                    DELETE FROM orderly.line_pricings
                    WHERE digest = (SELECT l.pricing FROM orderly.order_lines l WHERE l.order_id = $1::bigint ORDER BY l.line_no LIMIT 1)
                    """, [lastOrder])
            }
            try await expectViolation("line without its pricing", ": no stored pricing ")

            // Stock reserved without a reservation.
            let sku = try await database.execute(
                "UPDATE orderly.skus SET stock_reserved = stock_reserved + 1 WHERE id = (SELECT min(id) FROM orderly.skus WHERE stock_on_hand > stock_reserved) RETURNING code")
            #expect(sku.count == 1)
            try await expectViolation("stock", "SKU \(sku.scalar ?? "?"):")

            // A status change with no audit row.
            try await database.execute("""
                INSERT INTO orderly.order_status_history (order_id, customer_id, from_status, to_status)
                SELECT o.id, o.customer_id, o.status, o.status FROM orderly.orders o WHERE o.id = $1::bigint
                """, [lastOrder])
            try await expectViolation("status change without audit row", "order \(lastOrder): 2 change(s) to ")

            // A second order for one request (a retry that did not replay): an order of the user
            // inside the acknowledged id range that no key's reply names.
            let far = String(Int64(lastOrder)! + 1000), stray = String(Int64(lastOrder)! + 500)
            let more = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
            try more.seekToEnd()
            try more.write(contentsOf: Data("bench-never-committed-2\t\(far)\t10.00\n".utf8))
            try more.close()
            try await database.execute("""
                INSERT INTO orderly.orders (id, customer_id, status, created_by) OVERRIDING SYSTEM VALUE
                SELECT $2::bigint, o.customer_id, 'draft', o.created_by FROM orderly.orders o WHERE o.id = $1::bigint
                """, [lastOrder, stray])
            try await expectViolation("order without idempotency key", "order \(stray) (created")
        }
    }
}
