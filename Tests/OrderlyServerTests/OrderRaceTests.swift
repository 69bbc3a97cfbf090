import OrderlyClient
import OrderlyTestSupport
import Testing

/// The "exactly once" promises of order submission, each raced by many connections at once.
@Suite struct OrderRaceTests {
    /// A customer with an address and one SKU with `stock` units.
    static func prepare(_ database: TestDatabase, stock: Int) async throws -> Int {
        try await database.createUser("rita", password: "rita-password", roles: ["sales_rep"])
        try await database.createStockedProduct("RACE-1", name: "Race phone", price: "100", stock: stock)
        return try await database.createCustomer(by: "rita", name: "Race Ltd", email: "race@example.com", phone: "+4930100100")
    }

    static func race(_ server: TestServer, _ count: Int, _ line: @escaping @Sendable (Int) -> String) async throws -> [Response] {
        try await raceRequests(server, count, users: [("rita", "rita-password")], line)
    }

    @Test func fiftyClientsRaceForTenUnitsAndExactlyTenWin() async throws {
        nonisolated(unsafe) var customer = 0
        try await withTestServer(prepare: { customer = try await Self.prepare($0, stock: 10) }) { server in
            let id = customer
            let replies = try await Self.race(server, 50) { _ in
                #"ORDER CREATE customer=\#(id) lines=[{"sku":"RACE-1-STD","qty":1}] submit=true"#
            }
            let won = replies.filter(\.isSuccess)
            let lost = replies.filter { !$0.isSuccess }
            #expect(won.count == 10)
            #expect(lost.count == 40)
            for reply in lost {
                #expect(reply.errorCode == "CONFLICT", "\(reply)")
                #expect(reply.message == "not enough stock for SKU RACE-1-STD: 1 requested, 0 available", "\(reply)")
            }
            // No approval rule in this database: a submitted order is approved at once.
            for reply in won { #expect(try doc(reply.data[0])["status"].text == "ready") }
            let stock = try await server.database.execute("""
                SELECT stock_on_hand, stock_reserved,
                       (SELECT sum(qty) FROM orderly.stock_reservations WHERE released_at IS NULL),
                       (SELECT count(*) FROM orderly.orders)
                FROM orderly.skus WHERE code = 'RACE-1-STD'
                """)
            #expect(stock.rows == [["10", "10", "10", "10"]], "10 reserved by 10 orders; the losers left no order behind")
        }
    }

    @Test func tenConnectionsWithOneIdempotencyKeyMakeOneOrder() async throws {
        nonisolated(unsafe) var customer = 0
        try await withTestServer(prepare: { customer = try await Self.prepare($0, stock: 100) }) { server in
            let id = customer
            let line = #"ORDER CREATE customer=\#(id) lines=[{"sku":"RACE-1-STD","qty":2}] submit=true idempotency_key=order-7f3a"#
            let replies = try await Self.race(server, 10) { _ in line }
            let failed = replies.filter { !$0.isSuccess }
            #expect(failed.isEmpty, "\(failed)")
            #expect(Set(replies.map(\.data)).count == 1, "every connection got the same reply, byte for byte")
            let counts = try await server.database.execute(
                "SELECT (SELECT count(*) FROM orderly.orders), (SELECT stock_reserved FROM orderly.skus WHERE code = 'RACE-1-STD')")
            #expect(counts.rows == [["1", "2"]], "one order, reserved once")

            // Later replays too; the same key with other arguments is a conflict.
            let rita = try await server.connect(as: "rita", password: "rita-password")
            let replay = try await rita.request(line)
            #expect(replay.data == replies[0].data)
            let other = try await rita.request(line.replacingOccurrences(of: #""qty":2"#, with: #""qty":3"#))
            #expect(other.errorCode == "CONFLICT")
            #expect(other.message.contains("already used for a different request"))
            // Another user's identical key is theirs alone.
            try await server.database.createUser("sam", password: "sam-password", roles: ["sales_rep"])
            let sam = try await server.connect(as: "sam", password: "sam-password")
            #expect(try await sam.request(line).isSuccess)
            #expect(try await server.database.execute("SELECT count(*) FROM orderly.orders").rows == [["2"]])
            await sam.close()
            await rita.close()
        }
    }

    @Test func aDraftSubmittedTwiceAtOnceIsSubmittedOnce() async throws {
        nonisolated(unsafe) var customer = 0
        try await withTestServer(prepare: { customer = try await Self.prepare($0, stock: 100) }) { server in
            let rita = try await server.connect(as: "rita", password: "rita-password")
            let draft = try doc(try await rita.request(#"ORDER CREATE customer=\#(customer) lines=[{"sku":"RACE-1-STD","qty":5}]"#).data[0])
            await rita.close()
            let id = try #require(draft["id"].int)
            let replies = try await Self.race(server, 8) { _ in "ORDER SUBMIT \(id)" }
            #expect(replies.filter(\.isSuccess).count == 1)
            for reply in replies where !reply.isSuccess {
                #expect(reply.errorCode == "CONFLICT")
                #expect(reply.message == "order \(id) is ready; only a draft or a rejected order can be submitted")
            }
            let stock = try await server.database.execute("SELECT stock_reserved FROM orderly.skus WHERE code = 'RACE-1-STD'")
            #expect(stock.rows == [["5"]])
        }
    }

    @Test func twentyClientsRaceForACouponWithFiveUses() async throws {
        nonisolated(unsafe) var customer = 0
        try await withTestServer(prepare: { database in
            customer = try await Self.prepare(database, stock: 100)
            try await database.execute("INSERT INTO orderly.pricing_rules (name, kind, value) VALUES ('Launch: 10 % off', 'percent', 10)")
            try await database.execute("INSERT INTO orderly.coupons (code, max_uses) VALUES ('LAUNCH5', 5)")
            try await database.execute("INSERT INTO orderly.coupon_rules (coupon_id, rule_id) SELECT c.id, r.id FROM orderly.coupons c, orderly.pricing_rules r")
        }) { server in
            let id = customer
            let replies = try await Self.race(server, 20) { _ in
                #"ORDER CREATE customer=\#(id) lines=[{"sku":"RACE-1-STD","qty":1}] coupon=launch5 submit=true"#
            }
            let won = replies.filter(\.isSuccess)
            #expect(won.count == 5)
            for reply in won { #expect(try doc(reply.data[0])["totals"]["discount"].text == "10.00") }
            for reply in replies where !reply.isSuccess {
                #expect(reply.errorCode == "CONFLICT", "\(reply)")
                #expect(reply.message.contains("LAUNCH5") && reply.message.contains("used up"), "\(reply)")
            }
            let counts = try await server.database.execute("""
                SELECT (SELECT used_count FROM orderly.coupons), (SELECT count(*) FROM orderly.coupon_redemptions),
                       (SELECT count(*) FROM orderly.orders), (SELECT stock_reserved FROM orderly.skus)
                """)
            #expect(counts.rows == [["5", "5", "5", "5"]], "five uses, five orders, nothing left behind by the losers")
        }
    }
}
