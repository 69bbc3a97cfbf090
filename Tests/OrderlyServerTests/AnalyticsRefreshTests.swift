import Foundation
import OrderlyClient
import OrderlyTestSupport
import PostgresClient
import Testing

/// The analytics refresh reads the audit log; a row carries its transaction's start time, and a
/// transaction may commit long after that. A change committed by a transaction that ran longer
/// than the refresh's margin (ten minutes) must still reach the rollups.
@Suite struct AnalyticsRefreshTests {
    @Test func aSaleCommittedByATransactionLongerThanTheMarginReachesTheRollups() async throws {
        try await withTestServer { server in
            try await server.database.createUser("rita", password: "rita-password", roles: ["sales_rep"])
            try await server.database.createStockedProduct("MILL-1", name: "Mill", price: "100.00", stock: 100)
            let customer = try await server.database.createCustomer(by: "rita", name: "Acme", email: "buy@acme.example", phone: "+4940123456")
            let rita = try await server.connect(as: "rita", password: "rita-password")
            let draft = try await rita.request(#"ORDER CREATE customer=\#(customer) lines=[{"sku":"MILL-1-STD","qty":3}]"#)
            let draftLine = try #require(draft.data.first, "\(draft)")
            let order = try #require(try doc(draftLine)["id"].int)
            // Past the first refresh's backfill, to the incremental runs.
            for _ in 0..<10 {
                let run = try await server.database.execute("SELECT api.refresh_analytics() ->> 'backfilling'").scalar
                if run == "false" { break }
            }
            let ritaID = try #require(try await server.database.execute("SELECT id FROM orderly.users WHERE username = 'rita'").scalar)

            // The submission runs in a transaction left open; meanwhile other changes commit
            // (later audit ids), and a refresh runs "eleven minutes later", past the margin.
            let config = server.database.config
            let long = try Connection(config: config)
            defer { long.close() }
            try long.executeScript("BEGIN")
            let submitted = try long.query("SELECT api.order_submit($1::bigint, $2::jsonb) ->> 'status'", [ritaID, #"{"id":\#(order)}"#]).scalar
            #expect(submitted == "ready")
            #expect(try await rita.request(#"ORDER CREATE customer=\#(customer) lines=[{"sku":"MILL-1-STD","qty":1}]"#).isSuccess)
            try await server.database.execute("SELECT api.refresh_analytics(now() + interval '11 minutes')")
            try long.executeScript("COMMIT")
            try await server.database.execute("SELECT api.refresh_analytics(now() + interval '12 minutes')")

            let counted = try await server.database.execute(
                "SELECT coalesce(sum(orders), 0) || ' ' || coalesce(sum(net), 0) FROM analytics.sales_daily WHERE product = 'MILL-1'").scalar
            #expect(counted == "1 300.00", "the order submitted by the long transaction is a sale in the rollups")
            await rita.close()
        }
    }
}
