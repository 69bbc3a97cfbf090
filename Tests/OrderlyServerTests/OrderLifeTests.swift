import OrderlyClient
import OrderlyTestSupport
import Testing

/// An order's whole life over TCP, as the demo's people would live it: created by a sales rep
/// for the demo customer, approved in two steps, paid in two parts, its custom line made, shipped
/// in two parts, both delivered, completed — while the customer's own connection is pushed every
/// status change and its ORDER SHOW tells the story. And a prepaid customer's order that the
/// warehouse may not ship until it is paid.
@Suite struct OrderLifeTests {
    static func demo(_ database: TestDatabase) async throws {
        for loader in ["admin.create_demo_users()", "admin.load_demo_catalog()", "admin.load_demo_approvals()", "admin.load_demo_customer()"] {
            _ = try await database.execute("SELECT count(*) FROM \(loader)")
        }
    }

    static func status(_ server: TestServer, _ order: Int) async throws -> String? {
        try await server.database.execute("SELECT status FROM orderly.orders WHERE id = $1", [String(order)]).scalar
    }

    static func expectSuccess(_ client: OrderlyConnection, _ line: String, sourceLocation: SourceLocation = #_sourceLocation) async throws -> Response {
        let reply = try await client.request(line)
        #expect(reply.isSuccess, "\(line) → \(reply.final)", sourceLocation: sourceLocation)
        return reply
    }

    @Test func anOrderFromCreationToCompletedWithTheCustomerWatching() async throws {
        try await withTestServer(prepare: Self.demo) { server in
            func login(_ role: String, events: OrderlyConnection.EventDelivery = .inResponse) async throws -> OrderlyConnection {
                try await server.connect(as: role, password: "\(role)-demo", events: events)
            }
            let customerId = try #require(try await server.database.execute(
                "SELECT customer_id FROM orderly.users WHERE username = 'customer'").scalar)
            let phone = try #require(try await server.database.execute("""
                SELECT s.code FROM orderly.skus s JOIN orderly.products p ON p.id = s.product_id
                WHERE p.code = 'PHN-X1' AND s.stock_on_hand >= 2 ORDER BY s.code LIMIT 1
                """).scalar)
            let customer = try await login("customer", events: .stream)
            let rep = try await login("sales_rep")

            // A custom order: two phones and a custom-made case.
            let created = try await Self.expectSuccess(rep, #"""
                ORDER CREATE customer=\#(customerId) type=custom submit=true lines=[{"sku":"\#(phone)","qty":2},{"product":"CST-CASE","qty":1,"params":{"width_cm":10,"height_cm":20}}]
                """#)
            let createdLine = try #require(created.data.first)
            let order = try #require(try doc(createdLine)["id"].int)
            #expect(try await Self.status(server, order) == "pending_approval")

            // Two approval steps (custom orders: the sales manager, then production).
            for approver in ["sales_manager", "production_manager"] {
                let client = try await login(approver)
                _ = try await Self.expectSuccess(client, "ORDER APPROVE \(order)")
                await client.close()
            }
            // Approved, but a custom line is still to be made: not ready yet.
            #expect(try await Self.status(server, order) == "approved")

            let finance = try await login("finance_manager")
            let production = try await login("production_manager")
            let warehouse = try await login("warehouse")
            let total = try #require(try await server.database.execute("SELECT total FROM orderly.orders WHERE id = $1", [String(order)]).scalar)
            let firstPart = try #require(try await server.database.execute("SELECT round($1::numeric / 2, 2)", [total]).scalar)
            let secondPart = try #require(try await server.database.execute("SELECT $1::numeric - $2::numeric", [total, firstPart]).scalar)

            _ = try await Self.expectSuccess(production, "PRODUCTION START order=\(order)")
            #expect(try await Self.status(server, order) == "in_production")
            _ = try await Self.expectSuccess(finance, "PAYMENT RECORD order=\(order) amount=\(firstPart) method=bank_transfer reference=LIFE-1")
            // The phones go first; the case is not made yet, so it may not ship.
            let early = try await warehouse.request(#"SHIPMENT CREATE order=\#(order) lines=[{"line":2,"qty":1}] carrier=dhl"#)
            #expect(early.errorCode == "CONFLICT", "\(early.final)")
            _ = try await Self.expectSuccess(warehouse, #"SHIPMENT CREATE order=\#(order) lines=[{"line":1,"qty":2}] carrier=dhl tracking_no=LIFE1"#)
            #expect(try await Self.status(server, order) == "partially_shipped")
            _ = try await Self.expectSuccess(production, "PRODUCTION DONE order=\(order)")
            let second = try await Self.expectSuccess(warehouse, #"SHIPMENT CREATE order=\#(order) lines=[{"line":2,"qty":1}] carrier=ups tracking_no=LIFE2"#)
            #expect(try await Self.status(server, order) == "shipped")
            let shipments = try await server.database.execute("SELECT id FROM orderly.shipments WHERE order_id = $1 ORDER BY id", [String(order)])
                .rows.compactMap { $0[0] }
            #expect(shipments.count == 2, "\(second.final)")
            for shipment in shipments {
                _ = try await Self.expectSuccess(warehouse, "SHIPMENT DELIVERED \(shipment) signed_by=\"J. Doe\"")
            }
            // Delivered, but half of it is still to pay.
            #expect(try await Self.status(server, order) == "delivered")
            _ = try await Self.expectSuccess(finance, "PAYMENT RECORD order=\(order) amount=\(secondPart) method=bank_transfer reference=LIFE-2")
            #expect(try await Self.status(server, order) == "completed")

            // The customer was told of every step, as it happened.
            var seen: [String] = []
            while seen.last != "completed", let event = await nextEvent(customer.events) {
                guard event.hasPrefix("order.status ") else { continue }
                seen.append(try doc(String(event.dropFirst("order.status ".count)))["payload"]["status"].text ?? "?")
            }
            #expect(seen == ["approved", "in_production", "partially_shipped", "shipped", "delivered", "completed"], "\(seen)")

            // And its ORDER SHOW is a customer document of where the order stands.
            let shownLine = try #require(try await customer.request("ORDER SHOW \(order)").data.first)
            let shown = try doc(shownLine)
            #expect(shown["status"].text == "completed")
            #expect(shown["status_label"].text == "Completed")
            #expect(shown["timeline"].items.map { $0["event"].text ?? "?" }
                    == ["submitted", "approved", "in_production", "shipped", "shipped", "delivered", "delivered", "paid", "completed"],
                    "\(shownLine)")
            #expect(shown["payment_status"].text == "paid" && shown["open_amount"].text == "0.00")
            #expect(shown["payments"].items.count == 2)
            #expect(shown["shipments"].items.map { $0["tracking_no"].text ?? "?" } == ["LIFE1", "LIFE2"])
            #expect(shown["shipments"].items.allSatisfy { $0["tracking_url"].text?.hasPrefix("https://") == true })
            #expect(shown["timeline"].items[3]["tracking_no"].text == "LIFE1", "a shipped milestone says where to track it")
            #expect(!shownLine.contains("recorded_by") && !shownLine.contains("\"hold\""), "staff matters stay out: \(shownLine)")
            for client in [customer, rep, finance, production, warehouse] { await client.close() }
        }
    }

    @Test func aPrepaidOrderIsNotShippedUntilPaid() async throws {
        try await withTestServer(prepare: Self.demo) { server in
            func login(_ role: String) async throws -> OrderlyConnection {
                try await server.connect(as: role, password: "\(role)-demo")
            }
            let customerId = try #require(try await server.database.execute(
                "SELECT customer_id FROM orderly.users WHERE username = 'customer'").scalar)
            let finance = try await login("finance_manager")
            _ = try await Self.expectSuccess(finance, "CUSTOMER TERMS \(customerId) payment_terms=prepaid")
            let rep = try await login("sales_rep")
            let created = try await Self.expectSuccess(rep, #"ORDER CREATE customer=\#(customerId) submit=true lines=[{"product":"ACC-CABLE","qty":3}]"#)
            let createdLine = try #require(created.data.first)
            let order = try #require(try doc(createdLine)["id"].int)
            // Small enough for the supervisor's step.
            let supervisor = try await login("sales_supervisor")
            _ = try await Self.expectSuccess(supervisor, "ORDER APPROVE \(order)")
            #expect(try await Self.status(server, order) == "approved", "approved, but not released: prepaid and unpaid")

            let warehouse = try await login("warehouse")
            let refused = try await warehouse.request(#"SHIPMENT CREATE order=\#(order) lines=[{"line":1,"qty":3}] carrier=dhl"#)
            #expect(refused.errorCode == "CONFLICT", "\(refused.final)")
            let total = try #require(try await server.database.execute("SELECT total FROM orderly.orders WHERE id = $1", [String(order)]).scalar)
            _ = try await Self.expectSuccess(finance, "PAYMENT RECORD order=\(order) amount=\(total) method=card reference=PREPAID-1")
            #expect(try await Self.status(server, order) == "ready", "paid: released to the warehouse")
            _ = try await Self.expectSuccess(warehouse, #"SHIPMENT CREATE order=\#(order) lines=[{"line":1,"qty":3}] carrier=dhl"#)
            #expect(try await Self.status(server, order) == "shipped")
            for client in [finance, rep, supervisor, warehouse] { await client.close() }
        }
    }
}
