import Foundation
import OrderlyClient
import OrderlyTestSupport
import Testing

/// The pricing engine's documents, byte for byte (issue 16: the set-based rewrite must not change
/// what anyone sees). A corpus of quotes, orders and their documents that covers every rule kind —
/// graduated tiers (general and a segment's own), percent and fixed rules by product, category
/// (through the tree) and segment, buy-X-get-Y, exclusive rules applied alone and skipped, coupons,
/// segment prices for a product and for a SKU (variant deltas included), non-variant options,
/// manual prices, formulas, bundles, tax by region, by country and none — is run over TCP on a
/// fresh database and compared with Tests/Golden/pricing-corpus.txt, timestamps masked.
/// ORDERLY_UPDATE_GOLDEN=1 rewrites the file instead (review its diff before committing it).
@Suite struct PricingCorpusTests {
    static let goldenPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Golden/pricing-corpus.txt").path

    static func demo(_ database: TestDatabase) async throws {
        for loader in ["admin.create_demo_users()", "admin.load_demo_catalog()", "admin.load_demo_customer()"] {
            _ = try await database.execute("SELECT count(*) FROM \(loader)")
        }
    }

    /// ISO 8601 times (priced_at, created_at, …) differ per run; nothing else may.
    static func masked(_ text: String) -> String {
        text.replacing(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?/, with: "<time>")
    }

    @Test func documentsAreExactlyTheGoldenOnes() async throws {
        try await withTestServer(prepare: Self.demo) { server in
            let manager = try await server.connect(as: "sales_manager", password: "sales_manager-demo")
            let customerLogin = try await server.connect(as: "customer", password: "customer-demo")
            var transcript = ""
            var ids: [String: String] = [:]
            func run(_ client: OrderlyConnection, _ who: String, _ template: String, keep: String? = nil) async throws {
                var line = template
                for (name, value) in ids { line = line.replacingOccurrences(of: "{\(name)}", with: value) }
                let reply = try await client.request(line)
                transcript += "\(who)> \(line)\n"
                for data in reply.data { transcript += "*\(data)\n" }
                transcript += "\(reply.final)\n"
                if let keep, let first = reply.data.first, let id = first.firstMatch(of: /"id": ?(\d+)/)?.1 { ids[keep] = String(id) }
            }
            let m = "sales_manager"
            ids["demo"] = try #require(try await server.database.execute(
                "SELECT customer_id FROM orderly.users WHERE username = 'customer'").scalar)
            ids["x1"] = try #require(try await server.database.execute("""
                SELECT s.code FROM orderly.skus s JOIN orderly.products p ON p.id = s.product_id
                WHERE p.code = 'PHN-X1' ORDER BY s.code LIMIT 1
                """).scalar)
            ids["s2"] = try #require(try await server.database.execute("""
                SELECT s.code FROM orderly.skus s JOIN orderly.products p ON p.id = s.product_id
                WHERE p.code = 'PHN-S2' ORDER BY s.code DESC LIMIT 1
                """).scalar)

            // Customers in each tax situation and segment.
            try await run(manager, m, #"CUSTOMER CREATE name="Dealer GmbH" phone="+49 89 1234567" email=buy@dealer.example segment=dealer"#, keep: "dealer")
            try await run(manager, m, #"ADDRESS ADD customer={dealer} recipient="Max Huber" phone=+49891111111 line1="Marienplatz 1" city=Munich region=BY postal_code=80331 country=DE"#, keep: "dealer_by")
            try await run(manager, m, #"CUSTOMER CREATE name="Calif Inc" phone="+1 415 5550100" email=buy@calif.example"#, keep: "calif")
            try await run(manager, m, #"ADDRESS ADD customer={calif} recipient="Ann Lee" phone=+14155550101 line1="1 Market St" city="San Francisco" region=CA postal_code=94105 country=US"#, keep: "calif_ca")
            try await run(manager, m, #"ADDRESS ADD customer={calif} recipient="Ann Lee" phone=+12125550101 line1="5 Broadway" city="New York" region=NY postal_code=10004 country=US default=false"#, keep: "calif_ny")
            try await run(manager, m, #"CUSTOMER CREATE name="Nowhere Ltd" phone="+44 20 79460000" email=buy@nowhere.example"#, keep: "nowhere")
            try await run(manager, m, #"CUSTOMER CREATE name="Tokyo KK" phone="+81 3 12345678" email=buy@tokyo.example segment=key_account"#, keep: "tokyo")
            try await run(manager, m, #"ADDRESS ADD customer={tokyo} recipient="Aki Sato" phone=+81312345679 line1="1-1 Chiyoda" city=Tokyo region=13 postal_code=1000001 country=JP"#, keep: "tokyo_jp")

            // Prices and rules of every kind.
            try await run(manager, m, "PRICE SET product=PHN-S2 segment=dealer min_qty=5 percent=8")
            try await run(manager, m, "PRICE SET product=PHN-S2 segment=dealer min_qty=20 percent=15")
            try await run(manager, m, "PRICE SET product=PHN-X1 segment=dealer sku={x1} price=599")
            try await run(manager, m, "PRICE SET product=ACC-CABLE segment=key_account price=7.5")
            try await run(manager, m, #"RULE CREATE name="Electronics 5 %" kind=percent value=5 category=ELECTRONICS priority=10"#)
            try await run(manager, m, #"RULE CREATE name="Cable 0.50 off" kind=fixed value=0.5 product=ACC-CABLE priority=60"#)
            try await run(manager, m, #"RULE CREATE name="Dealer exclusive 12 %" kind=percent value=12 segment=dealer exclusive=true priority=5"#)
            try await run(manager, m, #"RULE CREATE name="Services 10 %" kind=percent value=10 category=SERVICES priority=30"#)
            try await run(manager, m, #"RULE CREATE name="Setup 3.00 off, alone" kind=fixed value=3 product=SVC-SETUP exclusive=true priority=90"#)
            try await run(manager, m, #"RULE CREATE name="Spring 2.00 off" kind=fixed value=2 priority=150"#, keep: "spring_rule")
            try await run(manager, m, "COUPON CREATE code=SPRING rules=[{spring_rule}]")
            try await run(manager, m, #"TAX SET country=DE region=BY rate=7 name="BY reduced (test)""#)

            // Quotes.
            try await run(manager, m, #"ORDER QUOTE customer={demo} lines=[{"sku":"{s2}","qty":60},{"product":"ACC-CABLE","qty":7},{"product":"SVC-SETUP","qty":2},{"product":"CST-CASE","qty":1,"params":{"width_cm":10,"height_cm":22.5}},{"product":"BND-X1-START","qty":1}]"#)
            try await run(manager, m, #"ORDER QUOTE customer={dealer} lines=[{"product":"PHN-X1","qty":3,"options":{"colour":"blk","storage":"128","accessories":["case","charger"]}},{"sku":"{s2}","qty":25},{"product":"ACC-CABLE","qty":8}]"#)
            try await run(manager, m, #"ORDER QUOTE customer={calif} coupon=WELCOME10 lines=[{"product":"PHN-S2","qty":10,"options":{"colour":"wht","storage":"256","accessories":["earbuds"]}},{"product":"ACC-CABLE","qty":4}]"#)
            try await run(manager, m, #"ORDER QUOTE customer={calif} ship_to={calif_ny} coupon=SPRING lines=[{"line":7,"product":"SVC-SETUP","qty":1},{"line":3,"sku":"{x1}","qty":1}]"#)
            try await run(manager, m, #"ORDER QUOTE customer={nowhere} lines=[{"sku":"{x1}","qty":2,"unit_price":650,"reason":"price match"},{"product":"ACC-CABLE","qty":3}]"#)
            try await run(manager, m, #"ORDER QUOTE customer={tokyo} lines=[{"product":"ACC-CABLE","qty":12},{"product":"CST-CASE","qty":2,"params":{"width_cm":5,"height_cm":40}}]"#)
            try await run(manager, m, #"ORDER QUOTE customer={demo} lines=[{"product":"NO-SUCH","qty":1}]"#)
            try await run(manager, m, "PRODUCT PRICE PHN-S2 sku={s2} qty=55 customer={dealer}")
            try await run(manager, m, "PRODUCT PRICE ACC-CABLE qty=9 ship_to=US-CA coupon=SPRING")

            // Orders and their documents, for staff and for the customer.
            try await run(manager, m, #"ORDER CREATE customer={demo} coupon=WELCOME10 lines=[{"sku":"{s2}","qty":12},{"product":"ACC-CABLE","qty":8},{"product":"SVC-SETUP","qty":1},{"product":"BND-X1-START","qty":1}]"#, keep: "order1")
            try await run(manager, m, "ORDER SHOW {order1}")
            try await run(customerLogin, "customer", "ORDER SHOW {order1}")
            try await run(manager, m, #"ORDER CREATE customer={dealer} submit=true lines=[{"product":"PHN-X1","qty":2,"options":{"colour":"blk","storage":"128"}},{"sku":"{x1}","qty":1,"unit_price":560,"reason":"display unit"},{"product":"CST-CASE","qty":1,"params":{"width_cm":12,"height_cm":18}}]"#, keep: "order2")
            try await run(manager, m, "ORDER SHOW {order2}")

            let actual = Self.masked(transcript)
            if ProcessInfo.processInfo.environment["ORDERLY_UPDATE_GOLDEN"] == "1" {
                try actual.write(toFile: Self.goldenPath, atomically: true, encoding: .utf8)
                return
            }
            let golden = try String(contentsOfFile: Self.goldenPath, encoding: .utf8)
            let expectedLines = golden.split(separator: "\n", omittingEmptySubsequences: false)
            let actualLines = actual.split(separator: "\n", omittingEmptySubsequences: false)
            // The first line that differs, rather than two pages of JSON.
            if let index = zip(expectedLines, actualLines).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
                Issue.record("line \(index + 1) differs:\n  golden: \(expectedLines[index])\n  actual: \(actualLines[index])")
            }
            #expect(actualLines.count == expectedLines.count, "line count")
            await manager.close()
            await customerLogin.close()
        }
    }
}
