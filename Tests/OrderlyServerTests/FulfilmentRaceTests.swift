import OrderlyClient
import OrderlyTestSupport
import Testing

/// Every "exactly once" after approval, raced over real TCP: clients send at the same moment
/// (`raceRequests` opens the gate once all are logged in), and the database decides.
@Suite struct FulfilmentRaceTests {
    static let staff = [("rita", "sales_rep"), ("walt", "warehouse"), ("lou", "logistics"), ("fran", "finance_manager")]

    /// A ready order (approved, every line in stock, net terms) of `units` mills; its id.
    static func readyOrder(_ server: TestServer, units: Int, stock: Int = 100) async throws -> Int {
        for (name, role) in staff { try await server.database.createUser(name, password: "\(name)-password", roles: [role]) }
        try await server.database.createStockedProduct("MILL-1", name: "Mill", price: "100.00", stock: stock)
        try await server.database.execute("SELECT admin.set_carrier('dhl', 'DHL', 'https://www.dhl.com/track?id={tracking_no}')")
        let customer = try await server.database.createCustomer(by: "rita", name: "Acme", email: "buy@acme.example", phone: "+4940123456")
        let rita = try await server.connect(as: "rita", password: "rita-password")
        let created = try await rita.request(#"ORDER CREATE customer=\#(customer) lines=[{"sku":"MILL-1-STD","qty":\#(units)}] submit=true"#)
        await rita.close()
        let line = try #require(created.data.first, "\(created)")
        #expect(try doc(line)["status"].text == "ready", "\(line)")
        return try #require(try doc(line)["id"].int)
    }

    static func stock(_ server: TestServer) async throws -> [String?] {
        try await server.database.execute("SELECT stock_on_hand, stock_reserved FROM orderly.skus WHERE code = 'MILL-1-STD'").rows[0]
    }

    @Test func twoClerksShippingTheLastUnitsOfALineOneWins() async throws {
        try await withTestServer { server in
            let order = try await Self.readyOrder(server, units: 3)
            let clerks = [("walt", "walt-password"), ("lou", "lou-password")]
            for round in 0..<2 {
                // Each clerk ships one unit at the same moment: of three, both get one in the
                // first round, and only one of them the last unit in the second.
                let replies = try await raceRequests(server, 2, users: clerks) { index in
                    #"SHIPMENT CREATE order=\#(order) lines=[{"line":1,"qty":1}] carrier=dhl tracking_no=R\#(round)C\#(index)"#
                }
                #expect(replies.filter(\.isSuccess).count == (round == 0 ? 2 : 1), "\(replies.map(\.final))")
                if round == 1 {
                    let loser = try #require(replies.first { !$0.isSuccess })
                    #expect(loser.errorCode == "CONFLICT", "\(loser.final)")
                }
            }
            let shipped = try await server.database.execute(
                "SELECT sum(qty) FROM orderly.shipment_lines WHERE order_id = $1", [String(order)]).scalar
            #expect(shipped == "3", "never more than ordered")
            #expect(try await Self.stock(server) == ["97", "0"], "on hand and reserved both went down by exactly 3")
            let status = try await server.database.execute("SELECT status FROM orderly.orders WHERE id = $1", [String(order)]).scalar
            #expect(status == "shipped")
        }
    }

    @Test func aPaymentRecordedTwiceAtOnceIsOneRow() async throws {
        try await withTestServer { server in
            let order = try await Self.readyOrder(server, units: 2)
            let replies = try await raceRequests(server, 6, users: [("fran", "fran-password")]) { _ in
                "PAYMENT RECORD order=\(order) amount=50.00 method=bank_transfer reference=BANK-2026-0001"
            }
            #expect(replies.filter(\.isSuccess).count == replies.count, "\(replies.map(\.final))")
            #expect(Set(replies.map(\.data)).count == 1, "every one got the same reply: \(replies.map(\.data))")
            let rows = try await server.database.execute("SELECT count(*), sum(amount) FROM orderly.payments WHERE order_id = $1", [String(order)])
            #expect(rows.rows == [["1", "50.00"]])
            let paid = try await server.database.execute("SELECT amount_paid FROM orderly.orders WHERE id = $1", [String(order)]).scalar
            #expect(paid == "50.00")
        }
    }

    /// A hold and a shipment at the same moment: the order row lock orders them. Either the
    /// shipment went first (then the hold is refused: a shipped order cannot be held) or the hold
    /// did (then the shipment is refused). Never both.
    @Test func aShipmentRacingAHoldNeverShipsAHeldOrder() async throws {
        try await withTestServer { server in
            let order = try await Self.readyOrder(server, units: 2)
            let replies = try await raceRequests(server, 2, users: [("walt", "walt-password"), ("fran", "fran-password")]) { index in
                index == 0 ? #"SHIPMENT CREATE order=\#(order) lines=[{"line":1,"qty":2}] carrier=dhl"#
                           : "ORDER HOLD \(order) reason=\"customer called about the address\""
            }
            let (ship, hold) = (replies[0], replies[1])
            #expect(ship.isSuccess != hold.isSuccess, "exactly one wins: \(ship.final) / \(hold.final)")
            let row = try await server.database.execute(
                "SELECT status, (SELECT count(*) FROM orderly.shipments WHERE order_id = o.id) FROM orderly.orders o WHERE o.id = $1",
                [String(order)]).rows[0]
            if ship.isSuccess {
                #expect(row == ["shipped", "1"])
                #expect(hold.errorCode == "CONFLICT", "\(hold.final)")
            } else {
                #expect(row == ["on_hold", "0"])
                #expect(ship.errorCode == "CONFLICT", "\(ship.final)")
                #expect(try await Self.stock(server) == ["100", "2"], "nothing left the warehouse")
            }
        }
    }
}
