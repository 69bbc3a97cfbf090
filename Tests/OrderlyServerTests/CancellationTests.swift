import OrderlyClient
import OrderlyTestSupport
import Testing

/// Cancellation over real TCP (R__198_cancellation.sql): a quote that changes nothing in the
/// database, a customer's request decided by a sales manager with the refund due recorded, each
/// department told once, and the races — a cancellation against a shipment, a retry with one
/// idempotency key, two people cancelling at once — each with exactly one outcome and the stock
/// consistent afterwards.
@Suite struct CancellationTests {
    static let staff = [("rita", "sales_rep"), ("cas", "customer_service"), ("sam", "sales_manager"), ("walt", "warehouse"),
                        ("lou", "logistics"), ("fran", "finance_manager"), ("pat", "production_manager")]

    /// A customer (with a `buyer` login) and the products: MILL-1 (goods, 100.00, 100 in stock)
    /// and CASE (made to order, 200.00). Returns the customer's id.
    static func prepare(_ server: TestServer) async throws -> Int {
        for (name, role) in staff { try await server.database.createUser(name, password: "\(name)-password", roles: [role]) }
        try await server.database.createUser("buyer", password: "buyer-password", roles: ["customer"])
        try await server.database.createStockedProduct("MILL-1", name: "Mill", price: "100.00", stock: 100)
        try await server.database.execute("INSERT INTO orderly.products (code, name, kind, base_price) VALUES ('CASE', 'Case', 'custom', 200)")
        try await server.database.execute("SELECT admin.set_carrier('dhl', 'DHL', 'https://www.dhl.com/track?id={tracking_no}')")
        let customer = try await server.database.createCustomer(by: "rita", name: "Acme", email: "buy@acme.example", phone: "+4940123456")
        try await server.database.execute("SELECT admin.link_customer('buyer', $1::bigint)", [String(customer)])
        return customer
    }

    /// An order created and submitted by rita; its id and status.
    static func order(_ server: TestServer, _ customer: Int, lines: String) async throws -> (id: Int, status: String) {
        let rita = try await server.connect(as: "rita", password: "rita-password")
        let created = try await rita.request("ORDER CREATE customer=\(customer) lines=\(lines) submit=true")
        await rita.close()
        let line = try #require(created.data.first, "\(created)")
        return (try #require(try doc(line)["id"].int), try #require(try doc(line)["status"].text))
    }

    /// What a cancellation could touch, as one row of text: stock, the order, and the counts of
    /// every table a cancellation writes.
    static func fingerprint(_ server: TestServer, _ order: Int) async throws -> [String?] {
        try await server.database.execute("""
            SELECT (SELECT string_agg(code || ' ' || stock_on_hand || '/' || stock_reserved, ',' ORDER BY code) FROM orderly.skus),
                   (SELECT status || ' ' || cancelled_total || ' ' || charges_total || ' ' || version FROM orderly.orders WHERE id = $1),
                   (SELECT string_agg(line_no || ':' || cancelled_qty, ',' ORDER BY line_no) FROM orderly.order_lines WHERE order_id = $1),
                   (SELECT count(*) FROM orderly.stock_reservations WHERE released_at IS NULL),
                   (SELECT string_agg(status, ',') FROM orderly.production_lines WHERE order_id = $1),
                   (SELECT count(*) FROM orderly.audit_log), (SELECT count(*) FROM orderly.notifications),
                   (SELECT count(*) FROM orderly.order_cancellations), (SELECT count(*) FROM orderly.order_charges),
                   (SELECT count(*) FROM orderly.order_status_history), (SELECT count(*) FROM orderly.outbox)
            """, [String(order)]).rows[0]
    }

    /// The order.cancelled notifications of an order, by recipient (a username or role:name).
    static func told(_ server: TestServer, _ kind: String, _ order: Int) async throws -> [String] {
        try await server.database.execute("""
            SELECT coalesce(u.username, 'role:' || n.recipient_role) FROM orderly.notifications n
            LEFT JOIN orderly.users u ON u.id = n.recipient_user_id
            WHERE n.kind = $1 AND (n.payload ->> 'order')::bigint = $2 ORDER BY 1
            """, [kind, String(order)]).rows.map { $0[0] ?? "" }
    }

    @Test func aQuoteChangesNothingAndARequestIsDecidedWithTheRefundDue() async throws {
        try await withTestServer { server in
            let customer = try await Self.prepare(server)
            let order = try await Self.order(server, customer, lines: #"[{"sku":"MILL-1-STD","qty":1},{"product":"CASE","qty":1}]"#)
            #expect(order.status == "approved")
            let pat = try await server.connect(as: "pat", password: "pat-password")
            #expect(try await pat.request("PRODUCTION START order=\(order.id)").isSuccess)
            let fran = try await server.connect(as: "fran", password: "fran-password")
            #expect(try await fran.request("PAYMENT RECORD order=\(order.id) amount=300.00 method=bank_transfer reference=BANK-1").isSuccess)

            // The customer asks what cancelling costs now: 20 % of 300.00, and nothing changes.
            let buyer = try await server.connect(as: "buyer", password: "buyer-password")
            let before = try await Self.fingerprint(server, order.id)
            let quote = try await buyer.request("ORDER CANCEL \(order.id) quote=true")
            let quoted = try doc(try #require(quote.data.first, "\(quote)"))
            #expect(quoted["status"].text == "quote" && quoted["outcome"].text == "request", "\(quoted)")
            #expect(quoted["fee"].text == "60.00" && quoted["refund_due"].text == "240.00", "\(quoted)")
            #expect(quoted["needs_approval_by"].isNull, "a customer is not shown who approves")
            #expect(try await Self.fingerprint(server, order.id) == before, "quote=true changed nothing in the database")

            // Asked, it is a request for a sales manager; customer service may not decide it.
            let asked = try await buyer.request("ORDER CANCEL \(order.id) reason=\"Project stopped\"")
            #expect(try doc(asked.data[0])["status"].text == "requested", "\(asked)")
            let cas = try await server.connect(as: "cas", password: "cas-password")
            let refused = try await cas.request("CANCEL APPROVE \(order.id)")
            #expect(refused.errorCode == "FORBIDDEN", "\(refused.final)")
            let sam = try await server.connect(as: "sam", password: "sam-password")
            let approved = try await sam.request("CANCEL APPROVE \(order.id)")
            let applied = try doc(try #require(approved.data.first, "\(approved)"))
            #expect(applied["status"].text == "applied" && applied["order_status"].text == "cancelled", "\(applied)")
            #expect(applied["fee"].text == "60.00" && applied["refund_due"].text == "240.00", "\(applied)")
            let after = try await Self.fingerprint(server, order.id)
            #expect(after[0] == "MILL-1-STD 100/0", "the reserved unit went back")
            #expect(after[1] == "cancelled 300.00 60.00 1" && after[2] == "1:1,2:1" && after[4] == "cancelled", "\(after)")

            // Each department once; the customer's logins through the allow-list.
            #expect(try await Self.told(server, "order.cancelled", order.id)
                    == ["buyer", "rita", "role:finance_manager", "role:logistics", "role:production_manager", "role:warehouse"])
            let inbox = try await buyer.request("INBOX")
            let notice = try #require(try inbox.data.map(doc).first { $0["kind"].text == "order.cancelled" }, "\(inbox.data)")
            #expect(notice["payload"]["fee"].text == "60.00" && notice["payload"]["reason"].text == "Project stopped", "\(notice)")

            // Finance pays back what is due, once.
            let over = try await fran.request("REFUND RECORD order=\(order.id) amount=240.01 reference=RF-1")
            #expect(over.errorCode == "CONFLICT", "\(over.final)")
            let refund = try await fran.request("REFUND RECORD order=\(order.id) amount=240.00 reference=RF-1")
            #expect(try doc(refund.data[0])["payment_status"].text == "paid", "\(refund)")
            let again = try await fran.request("REFUND RECORD order=\(order.id) amount=240.00 reference=RF-1")
            #expect(again.data == refund.data, "the same refund again: the same reply")
            let shown = try doc(try await buyer.request("ORDER SHOW \(order.id)").data[0])
            #expect(shown["totals"]["due"].text == "60.00" && shown["refund_due"].text == "0.00" && shown["payment_status"].text == "paid")
            for client in [pat, fran, buyer, cas, sam] { await client.close() }
        }
    }

    /// A cancellation and a shipment of the whole order at the same moment: the order row orders
    /// them. Shipped first: nothing is left to cancel. Cancelled first: nothing ships.
    @Test func aCancellationRacingAShipmentHasOneOutcome() async throws {
        try await withTestServer { server in
            let customer = try await Self.prepare(server)
            for round in 0..<4 {
                let order = try await Self.order(server, customer, lines: #"[{"sku":"MILL-1-STD","qty":2}]"#)
                #expect(order.status == "ready")
                let stockBefore = try await server.database.execute(
                    "SELECT stock_on_hand, stock_reserved FROM orderly.skus WHERE code = 'MILL-1-STD'").rows[0]
                let replies = try await raceRequests(server, 2, users: [("walt", "walt-password"), ("rita", "rita-password")]) { index in
                    index == 0 ? #"SHIPMENT CREATE order=\#(order.id) lines=[{"line":1,"qty":2}] carrier=dhl tracking_no=RACE\#(round)"#
                               : "ORDER CANCEL \(order.id) reason=\"customer called\""
                }
                let (ship, cancel) = (replies[0], replies[1])
                #expect(ship.isSuccess != cancel.isSuccess, "exactly one wins: \(ship.final) / \(cancel.final)")
                let row = try await server.database.execute("""
                    SELECT o.status, (SELECT count(*) FROM orderly.shipments s WHERE s.order_id = o.id),
                           (SELECT count(*) FROM orderly.order_cancellations c WHERE c.order_id = o.id),
                           (SELECT count(*) FROM orderly.stock_reservations r WHERE r.order_id = o.id AND r.released_at IS NULL)
                    FROM orderly.orders o WHERE o.id = $1
                    """, [String(order.id)]).rows[0]
                let stock = try await server.database.execute(
                    "SELECT stock_on_hand, stock_reserved FROM orderly.skus WHERE code = 'MILL-1-STD'").rows[0]
                let (onHand, reserved) = (Int(stockBefore[0]!)!, Int(stockBefore[1]!)!)
                if ship.isSuccess {
                    #expect(row == ["shipped", "1", "0", "0"], "\(row)")
                    #expect(cancel.errorCode == "CONFLICT", "\(cancel.final)")
                    #expect(stock == [String(onHand - 2), String(reserved - 2)], "two left the warehouse")
                } else {
                    #expect(row == ["cancelled", "0", "1", "0"], "\(row)")
                    #expect(ship.errorCode == "CONFLICT", "\(ship.final)")
                    #expect(stock == [String(onHand), String(reserved - 2)], "nothing left; the two are free again")
                }
            }
        }
    }

    @Test func aCancellationRetriedWithOneKeyIsCancelledOnce() async throws {
        try await withTestServer { server in
            let customer = try await Self.prepare(server)
            let order = try await Self.order(server, customer, lines: #"[{"sku":"MILL-1-STD","qty":3}]"#)
            let line = "ORDER CANCEL \(order.id) reason=\"duplicate order\" idempotency_key=cancel-\(order.id)"
            let replies = try await raceRequests(server, 6, users: [("rita", "rita-password")]) { _ in line }
            #expect(replies.filter(\.isSuccess).count == replies.count, "\(replies.map(\.final))")
            #expect(Set(replies.map(\.data)).count == 1, "every connection got the same reply, byte for byte")
            let rows = try await server.database.execute("""
                SELECT (SELECT count(*) FROM orderly.order_cancellations), (SELECT count(*) FROM orderly.order_charges),
                       (SELECT stock_reserved FROM orderly.skus WHERE code = 'MILL-1-STD'),
                       (SELECT count(*) FROM orderly.audit_log WHERE action = 'order.cancel')
                """).rows
            #expect(rows == [["1", "1", "0", "1"]], "one cancellation, one fee, the stock released once")
            #expect(try await Self.told(server, "order.cancelled", order.id)
                    == ["buyer", "rita", "role:finance_manager", "role:logistics", "role:warehouse"], "each told once")
        }
    }

    @Test func twoPeopleCancellingOneOrderAtOnceCancelItOnce() async throws {
        try await withTestServer { server in
            let customer = try await Self.prepare(server)
            let order = try await Self.order(server, customer, lines: #"[{"sku":"MILL-1-STD","qty":2}]"#)
            let replies = try await raceRequests(server, 2, users: [("rita", "rita-password"), ("cas", "cas-password")]) { index in
                "ORDER CANCEL \(order.id) reason=\"asked by phone \(index)\""
            }
            #expect(replies.filter(\.isSuccess).count == 1, "\(replies.map(\.final))")
            let loser = try #require(replies.first { !$0.isSuccess })
            #expect(loser.errorCode == "CONFLICT" && loser.message.contains("cancelled already"), "\(loser.final)")
            let rows = try await server.database.execute("""
                SELECT (SELECT count(*) FROM orderly.order_charges), (SELECT stock_reserved FROM orderly.skus WHERE code = 'MILL-1-STD')
                """).rows
            #expect(rows == [["1", "0"]], "one fee; released once")
        }
    }
}
