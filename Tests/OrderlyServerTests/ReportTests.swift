import OrderlyClient
import OrderlyTestSupport
import Testing

/// REPORT over real TCP, fed by orderlyd's own analytics timer (R__200_analytics.sql): an order
/// created now reaches REPORT sales within a few timer ticks; a cancellation takes it out again;
/// a sales rep may not read reports.
@Suite struct ReportTests {
    @Test func ordersReachTheReportsByTheTimerAndASalesRepIsRefused() async throws {
        try await withTestServer(configure: { $0.analyticsSeconds = 1 }) { server in
            for (name, role) in [("rita", "sales_rep"), ("fran", "finance_manager"), ("sam", "sales_manager")] {
                try await server.database.createUser(name, password: "\(name)-password", roles: [role])
            }
            try await server.database.createStockedProduct("MILL-1", name: "Mill", price: "100.00", stock: 100)
            let customer = try await server.database.createCustomer(by: "rita", name: "Acme", email: "buy@acme.example", phone: "+4940123456")
            let rita = try await server.connect(as: "rita", password: "rita-password")
            let fran = try await server.connect(as: "fran", password: "fran-password")

            let refused = try await rita.request("REPORT sales")
            #expect(refused.errorCode == "FORBIDDEN", "\(refused.final)")
            let listed = try await fran.request("REPORT")
            #expect(try listed.data.map { try doc($0)["report"].text ?? "" }
                    == ["sales", "products", "slow_movers", "customers", "rfm", "stages", "on_time", "cancellations", "receivables"])

            let created = try await rita.request(#"ORDER CREATE customer=\#(customer) lines=[{"sku":"MILL-1-STD","qty":3}] submit=true"#)
            let line = try #require(created.data.first, "\(created)")
            let order = try #require(try doc(line)["id"].int)
            // The timer (every second here) brings the sale in.
            try await waitUntil("the order is in REPORT sales") {
                let rows = try await fran.request("REPORT sales group=day").data.map(doc)
                return rows.contains { $0["net"].text == "300.00" && $0["orders"].int == 1 }
            }
            let top = try await fran.request("REPORT products").data.map(doc)
            #expect(top.first?["product"].text == "MILL-1" && top.first?["units"].int == 3, "\(top)")

            // Cancelled, it leaves the sales at the next ticks.
            let sam = try await server.connect(as: "sam", password: "sam-password")
            #expect(try await sam.request("ORDER CANCEL \(order) reason=\"customer called\"").isSuccess)
            try await waitUntil("the cancelled order leaves REPORT sales") {
                try await fran.request("REPORT sales group=day").data.isEmpty
            }
            let cancellations = try await fran.request("REPORT cancellations").data.map(doc)
            #expect(cancellations.first?["stage"].text == "ready" && cancellations.first?["cancellations"].int == 1, "\(cancellations)")
            for client in [rita, fran, sam] { await client.close() }
        }
    }
}
