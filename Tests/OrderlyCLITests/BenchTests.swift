import Foundation
import OrderlyClient
import OrderlyTestSupport
import Testing

/// `orderly-bench` against a real server: it loads, counts and reports, and what it reports
/// matches what the database holds.
@Suite struct BenchTests {
    static var binary: URL { CLI.binary.deletingLastPathComponent().appendingPathComponent("orderly-bench") }

    static func run(_ arguments: [String]) async throws -> [String: Any] {
        let output = try await onThread { () throws -> Data in
            let process = Process()
            process.executableURL = binary
            process.arguments = arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return data
        }
        let line = String(decoding: output, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
        return (try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) ?? [:]
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
}
