import Foundation
import OrderlyClient
import OrderlyTestSupport
import Testing

/// `orderly REPORT …` against a real server: an aligned table with a bar chart of the report's
/// main measure, `--csv` and `--json` for export.
@Suite struct ReportCLITests {
    @Test func aReportIsATableWithBarsOrCSVOrJSON() async throws {
        try await withTestServer { server in
            try await server.database.createUser("rita", password: "rita-password", roles: ["sales_rep"])
            try await server.database.createUser("fran", password: "fran-password", roles: ["finance_manager"])
            try await server.database.createStockedProduct("MILL-1", name: "Mill", price: "100.00", stock: 100)
            try await server.database.createStockedProduct("GIZ-1", name: "Gizmo", price: "10.00", stock: 100)
            let customer = try await server.database.createCustomer(by: "rita", name: "Acme", email: "buy@acme.example", phone: "+4940123456")
            let rita = try await server.connect(as: "rita", password: "rita-password")
            for lines in [#"[{"sku":"MILL-1-STD","qty":4}]"#, #"[{"sku":"GIZ-1-STD","qty":2}]"#] {
                #expect(try await rita.request("ORDER CREATE customer=\(customer) lines=\(lines) submit=true").isSuccess)
            }
            await rita.close()
            try await server.database.execute("SELECT api.refresh_analytics()")
            let login = ["--port", "\(server.port)", "--user", "fran"]
            let env = ["ORDERLY_PASSWORD": "fran-password"]

            let table = try await CLI.run(login + ["REPORT", "products"], environment: env)
            #expect(table.status == 0, "\(table.stderr)")
            let lines = table.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first?.hasPrefix("product  name   category  currency  orders  units  net     rank  net chart") == true, "\(table.stdout)")
            let bars = lines.dropFirst(2).map { $0.filter { $0 == "█" }.count }
            #expect(bars == [30, 2], "the best seller's bar is full width, the other in proportion (400.00 : 20.00, 1.5 blocks rounded): \(table.stdout)")

            let csv = try await CLI.run(login + ["--csv", "REPORT", "products"], environment: env)
            #expect(csv.stdout == "product,name,category,currency,orders,units,net,rank\r\nMILL-1,Mill,,EUR,1,4,400.00,1\r\nGIZ-1,Gizmo,,EUR,1,2,20.00,2\r\n",
                    "\(csv.stdout)")
            let json = try await CLI.run(login + ["--json", "REPORT", "products"], environment: env)
            #expect(json.stdout.split(separator: "\n").count == 2 && json.stdout.hasPrefix(#"{"product":"MILL-1""#), "\(json.stdout)")

            let refused = try await CLI.run(["--port", "\(server.port)", "--user", "rita", "REPORT", "sales"], environment: ["ORDERLY_PASSWORD": "rita-password"])
            #expect(refused.status == 1 && refused.stderr.hasPrefix("-FORBIDDEN"), "\(refused.stderr)")
        }
    }
}
