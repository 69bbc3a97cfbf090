import Dispatch
import OrderlyClient
import OrderlyTestSupport
import PostgresClient
import Testing

/// Amendments over real TCP (R__197_amendments.sql): an order changed three times — a quantity
/// increase that needs a new approval, a new address after a partial shipment, a line removed —
/// with its versions, diffs, reservations and each department's inbox checked after every step;
/// and the races: an amendment against an approval, two amendments of one order at once.
@Suite struct AmendmentTests {
    static let staff = [("rita", "sales_rep"), ("cas", "customer_service"), ("sam", "sales_manager"), ("gus", "general_manager"),
                        ("walt", "warehouse"), ("lou", "logistics"), ("fran", "finance_manager"), ("pat", "production_manager")]

    /// Users, MILL-1 (100.00) and GIZ-1 (10.00), 100 of each; standard orders from 1 000 and
    /// strategic ones need a sales manager, strategic ones from 1 000 the general manager.
    /// Returns the customer's id (its login: buyer).
    static func prepare(_ server: TestServer) async throws -> Int {
        for (name, role) in staff { try await server.database.createUser(name, password: "\(name)-password", roles: [role]) }
        try await server.database.createUser("buyer", password: "buyer-password", roles: ["customer"])
        try await server.database.createStockedProduct("MILL-1", name: "Mill", price: "100.00", stock: 100)
        try await server.database.createStockedProduct("GIZ-1", name: "Gizmo", price: "10.00", stock: 100)
        try await server.database.execute("""
            SELECT admin.set_carrier('dhl', 'DHL', 'https://www.dhl.com/track?id={tracking_no}'),
                   admin.create_approval_rule('Large', ARRAY['standard'], 1000),
                   admin.create_approval_rule('Strategic', ARRAY['strategic']),
                   admin.create_approval_rule('Strategic large', ARRAY['strategic'], 1000, NULL, 10)
            """)
        try await server.database.execute("""
            SELECT admin.add_approval_step('Large', 1, 'sales_manager', interval '1 day'),
                   admin.add_approval_step('Strategic', 1, 'sales_manager', interval '1 day'),
                   admin.add_approval_step('Strategic large', 1, 'general_manager', interval '1 day'),
                   admin.set_approval_limit('sales_manager', 'standard', NULL),
                   admin.set_approval_limit('sales_manager', 'strategic', NULL),
                   admin.set_approval_limit('general_manager', 'strategic', NULL)
            """)
        let customer = try await server.database.createCustomer(by: "rita", name: "Acme", email: "buy@acme.example", phone: "+4940123456")
        try await server.database.execute("SELECT admin.link_customer('buyer', $1::bigint)", [String(customer)])
        return customer
    }

    static func create(_ client: OrderlyConnection, _ customer: Int, _ lines: String, type: String = "standard") async throws -> (Int, String) {
        let created = try await client.request("ORDER CREATE customer=\(customer) lines=\(lines) type=\(type) submit=true")
        let line = try doc(try #require(created.data.first, "\(created)"))
        return (try #require(line["id"].int), try #require(line["status"].text))
    }

    /// The order's open reservation rows; whether they are exactly what its lines still need (a
    /// waiting change holds more: what it will need) and every SKU's reserved count is what all
    /// open rows hold.
    static func reservations(_ server: TestServer, _ order: Int) async throws -> (held: String, exact: Bool, consistent: Bool) {
        let row = try await server.database.execute("""
            SELECT coalesce((SELECT string_agg(r.line_no || ':' || k.code || '=' || r.qty, ' ' ORDER BY r.line_no, k.code)
                             FROM orderly.stock_reservations r JOIN orderly.skus k ON k.id = r.sku_id
                             WHERE r.order_id = $1 AND r.released_at IS NULL), ''),
                   orderly.open_stock_needs($1) = (SELECT coalesce(jsonb_agg(jsonb_build_object('line', r.line_no, 'sku_id', r.sku_id, 'qty', r.qty)
                                                                             ORDER BY r.line_no, r.sku_id), '[]')
                                                   FROM orderly.stock_reservations r WHERE r.order_id = $1 AND r.released_at IS NULL),
                   (SELECT bool_and(k.stock_reserved = coalesce((SELECT sum(r.qty) FROM orderly.stock_reservations r
                                                                    WHERE r.sku_id = k.id AND r.released_at IS NULL), 0))
                        FROM orderly.skus k)
            """, [String(order)]).rows[0]
        return (row[0] ?? "", row[1] == "t", row[2] == "t")
    }

    /// The versions of the order changes that reached `user`'s inbox, by kind (order.changed: the
    /// version; approval.requested: "approval").
    static func inbox(_ client: OrderlyConnection, order: Int) async throws -> [String] {
        let rows = try await client.request("INBOX limit=200").data.map(doc)
        return rows.filter { $0["payload"]["order"].int == order && ["order.changed", "approval.requested", "change.confirm"].contains($0["kind"].text ?? "") }
            .map { $0["kind"].text == "order.changed" ? "v\($0["payload"]["version"].int ?? 0)" : ($0["kind"].text ?? "") }
            .sorted()
    }

    @Test func anOrderAmendedThreeTimesHasFourVersionsAndEachDepartmentHearsItsPart() async throws {
        try await withTestServer { server in
            let customer = try await Self.prepare(server)
            var clients: [String: OrderlyConnection] = [:]
            for name in ["rita", "sam", "walt", "lou", "fran", "pat", "buyer"] {
                clients[name] = try await server.connect(as: name, password: "\(name)-password")
            }
            let rita = clients["rita"]!
            let (order, status) = try await Self.create(rita, customer, #"[{"sku":"MILL-1-STD","qty":5},{"sku":"GIZ-1-STD","qty":3}]"#)
            #expect(status == "ready")

            // 1. Ten mills: 1 030.00 needs the sales manager; the change waits, holding the stock.
            let first = try await rita.request(#"ORDER AMEND \#(order) changes=[{"action":"set_line","line":1,"qty":10}] reason="customer wants ten""#)
            let waiting = try doc(try #require(first.data.first, "\(first)"))
            #expect(waiting["status"].text == "pending" && waiting["waiting_for"].text == "approval", "\(waiting)")
            #expect(try await Self.reservations(server, order).held == "1:MILL-1-STD=10 2:GIZ-1-STD=3")
            #expect(try await clients["sam"]!.request("ORDER APPROVE \(order)").isSuccess)
            var stock = try await Self.reservations(server, order)
            #expect(stock.held == "1:MILL-1-STD=10 2:GIZ-1-STD=3" && stock.exact && stock.consistent, "\(stock)")

            // 2. Four leave; then the rest goes to another address.
            let shipped = try await clients["walt"]!.request(#"SHIPMENT CREATE order=\#(order) lines=[{"line":1,"qty":4}] carrier=dhl"#)
            #expect(shipped.isSuccess, "\(shipped.final)")
            let address = try await rita.request("ADDRESS ADD customer=\(customer) recipient=\"Site B\" phone=+4940123457 line1=\"Dock 9\" city=Hamburg region=HH postal_code=20457 country=DE")
            let addressID = try #require(try doc(address.data[0])["id"].int, "\(address)")
            let second = try await rita.request(#"ORDER AMEND \#(order) changes=[{"action":"ship_to","address":\#(addressID)}] reason="deliver the rest to site B""#)
            #expect(try doc(second.data[0])["version"].int == 3, "\(second)")
            stock = try await Self.reservations(server, order)
            #expect(stock.held == "1:MILL-1-STD=6 2:GIZ-1-STD=3" && stock.exact && stock.consistent, "only what has not shipped is held: \(stock)")

            // 3. No gizmos after all. Taking units off a partly shipped order is a cancellation of
            // them: refused under the shipped policy (a fee, the sales manager decides); allowed
            // where an admin made it free.
            let refused = try await rita.request(#"ORDER AMEND \#(order) changes=[{"action":"remove_line","line":2}] reason="gizmos not needed""#)
            #expect(refused.final.hasPrefix("-CONFLICT line 2: taking 3 units off an order that is partially_shipped is a cancellation"), "\(refused.final)")
            try await server.database.execute("UPDATE orderly.cancellation_policies SET fee_percent = 0, fee_fixed = 0, fee_min = NULL, fee_max = NULL, approval_role = NULL WHERE status = 'partially_shipped'")
            let third = try await rita.request(#"ORDER AMEND \#(order) changes=[{"action":"remove_line","line":2}] reason="gizmos not needed""#)
            #expect(try doc(try #require(third.data.first, "\(third.final)"))["version"].int == 4, "\(third)")
            stock = try await Self.reservations(server, order)
            #expect(stock.held == "1:MILL-1-STD=6" && stock.exact && stock.consistent, "\(stock)")

            // Four versions, with who, why and the totals.
            let versions = try await clients["buyer"]!.request("ORDER VERSIONS \(order)").data.map(doc)
            #expect(versions.map { "\($0["version"].int ?? 0) \($0["total_before"].text ?? "-")→\($0["total_after"].text ?? "")" }
                    == ["1 -→530.00", "2 530.00→1030.00", "3 1030.00→1030.00", "4 1030.00→1000.00"], "\(versions)")
            // The diffs between them.
            let diff12 = try doc(try await rita.request("ORDER DIFF \(order) from=1 to=2").data[0])
            #expect(diff12["lines"][0]["fields"]["qty"]["from"].int == 5 && diff12["lines"][0]["fields"]["qty"]["to"].int == 10, "\(diff12)")
            let diff23 = try doc(try await rita.request("ORDER DIFF \(order) from=2 to=3").data[0])
            #expect(diff23["header"]["ship_to"]["to"].int == addressID && diff23["lines"].items.isEmpty, "\(diff23)")
            let diff34 = try doc(try await clients["buyer"]!.request("ORDER DIFF \(order)").data[0])
            #expect(diff34["lines"][0]["change"].text == "removed" && diff34["lines"][0]["line"].int == 2, "\(diff34)")
            #expect(diff34["totals"]["total"]["to"].text == "1000.00", "\(diff34)")

            // Each inbox holds exactly what was meant for it.
            #expect(try await Self.inbox(clients["walt"]!, order: order) == ["v2", "v4"], "the warehouse: what is picked")
            #expect(try await Self.inbox(clients["lou"]!, order: order) == ["v3"], "logistics: the address")
            #expect(try await Self.inbox(clients["fran"]!, order: order) == ["v2", "v4"], "finance: the totals")
            #expect(try await Self.inbox(clients["pat"]!, order: order) == [], "production: nothing is made")
            #expect(try await Self.inbox(clients["sam"]!, order: order) == ["approval.requested"], "the approver: the change's step")
            #expect(try await Self.inbox(clients["buyer"]!, order: order) == ["v2", "v3", "v4"], "the customer: every applied change")
            #expect(try await Self.inbox(rita, order: order) == ["v2", "v3", "v4"], "the author too")
            for client in clients.values { await client.close() }
        }
    }

    /// A sales manager approves a strategic order while a rep raises it over 1 000 (which needs
    /// the general manager). The order row orders them: approved first, the change then waits for
    /// its own round; changed first, the approval is refused (what it saw is no longer asked) and
    /// the new round waits. Never an approval of a total nobody saw.
    @Test func anAmendmentRacingAnApprovalHasOneOutcome() async throws {
        try await withTestServer { server in
            let customer = try await Self.prepare(server)
            for round in 0..<3 {
                let rita = try await server.connect(as: "rita", password: "rita-password")
                let (order, status) = try await Self.create(rita, customer, #"[{"sku":"MILL-1-STD","qty":2}]"#, type: "strategic")
                await rita.close()
                #expect(status == "pending_approval")
                let replies = try await raceRequests(server, 2, users: [("sam", "sam-password"), ("rita", "rita-password")]) { index in
                    index == 0 ? "ORDER APPROVE \(order)"
                               : #"ORDER AMEND \#(order) changes=[{"action":"set_line","line":1,"qty":12}] reason="race \#(round)""#
                }
                let (approve, amend) = (replies[0], replies[1])
                #expect(amend.isSuccess, "\(amend.final)")
                let row = try await server.database.execute("""
                    SELECT o.status, o.total, (SELECT string_agg(c.status, ',') FROM orderly.order_changes c WHERE c.order_id = o.id),
                           (SELECT string_agg(a.round || ':' || a.status || ':' || a.role || ':' || (a.change_id IS NOT NULL), ' ' ORDER BY a.round)
                            FROM orderly.order_approvals a WHERE a.order_id = o.id)
                    FROM orderly.orders o WHERE o.id = $1
                    """, [String(order)]).rows[0]
                if approve.isSuccess {
                    #expect(row == ["ready", "200.00", "pending", "1:approved:sales_manager:false 2:pending:general_manager:true"], "\(row)")
                } else {
                    #expect(approve.errorCode == "CONFLICT", "\(approve.final)")
                    #expect(row == ["pending_approval", "1200.00", "applied", "1:skipped:sales_manager:false 2:pending:general_manager:false"], "\(row)")
                }
                // Either way 12 are held: by the applied change, or by the waiting one for later.
                let stock = try await Self.reservations(server, order)
                #expect(stock.held == "1:MILL-1-STD=12" && stock.exact == !approve.isSuccess && stock.consistent, "\(stock)")
            }
        }
    }

    /// Two people change one order at the same moment: they queue on the order row, each change
    /// applies on top of the other, and the reservation is what the last one asked for.
    @Test func twoAmendmentsOfOneOrderAtOnceApplyOneAfterTheOther() async throws {
        try await withTestServer { server in
            let customer = try await Self.prepare(server)
            let rita = try await server.connect(as: "rita", password: "rita-password")
            let (order, _) = try await Self.create(rita, customer, #"[{"sku":"MILL-1-STD","qty":2}]"#)
            await rita.close()
            // Whichever comes second may lower the quantity: taking units off a ready order is
            // free here, so that both apply (the shipped policy charges for it: a cancellation).
            try await server.database.execute("UPDATE orderly.cancellation_policies SET fee_percent = 0, fee_min = NULL WHERE status = 'ready'")
            let replies = try await raceRequests(server, 2, users: [("rita", "rita-password"), ("cas", "cas-password")]) { index in
                #"ORDER AMEND \#(order) changes=[{"action":"set_line","line":1,"qty":\#(index == 0 ? 4 : 6)}] reason="at once \#(index)""#
            }
            #expect(replies.filter(\.isSuccess).count == 2, "\(replies.map(\.final))")
            let versions = try replies.map { try doc($0.data[0])["version"].int ?? 0 }.sorted()
            #expect(versions == [2, 3], "one after the other: \(versions)")
            let last = try #require(try replies.first { try doc($0.data[0])["version"].int == 3 })
            let lastQty = try doc(last.data[0])["diff"]["lines"][0]["fields"]["qty"]["to"].int ?? 0
            let stock = try await Self.reservations(server, order)
            #expect(stock.held == "1:MILL-1-STD=\(lastQty)" && stock.exact && stock.consistent, "\(stock)")
            let qty = try await server.database.execute("SELECT qty FROM orderly.order_lines WHERE order_id = $1", [String(order)]).scalar
            #expect(qty == String(lastQty))
        }
    }

    /// ADDRESS REMOVE while an amendment that will wait is being requested: the removal waits
    /// for the amendment's transaction (held open here, on a connection of the test's own) and
    /// then refuses, as the change waits to ship there. Without the lock it answered at once
    /// and left a waiting change that could never be approved.
    @Test func anAddressIsNotRemovedUnderAChangeBeingRequested() async throws {
        try await withTestServer { server in
            let customer = try await Self.prepare(server)
            let rita = try await server.connect(as: "rita", password: "rita-password")
            let (order, status) = try await Self.create(rita, customer, #"[{"sku":"MILL-1-STD","qty":1}]"#)
            #expect(status == "ready")
            let added = try await rita.request("ADDRESS ADD customer=\(customer) recipient=\"Site C\" phone=+4940123458 line1=\"Dock 10\" city=Hamburg region=HH postal_code=20457 country=DE")
            let first = try #require(added.data.first, "\(added)")
            let address = try #require(try doc(first)["id"].int)
            let actor = try #require(try await server.database.execute("SELECT id FROM orderly.users WHERE username = 'rita'").scalar)
            let changes = #"{"id":\#(order),"reason":"bigger","changes":[{"action":"set_line","line":1,"qty":12},{"action":"ship_to","address":\#(address)}]}"#
            let held = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
            let config = server.database.config
            let amendment = Task {
                try await onThread {
                    let connection = try Connection(config: config)
                    defer { connection.close() }
                    _ = try connection.query("BEGIN")
                    let reply = try connection.query("SELECT * FROM api.order_amend($1::bigint, $2::jsonb)", [actor, changes]).scalar ?? ""
                    held.signal()
                    release.wait()
                    _ = try connection.query("COMMIT")
                    return reply
                }
            }
            try await onThread { held.wait() }
            let removal = Task {
                let remover = try await server.connect(as: "rita", password: "rita-password")
                let reply = try await remover.request("ADDRESS REMOVE \(address)")
                await remover.close()
                return reply
            }
            // Until the removal waits for a lock (or, were there none to wait for, has answered).
            let started = ContinuousClock.now
            while ContinuousClock.now - started < .seconds(10) {
                let waiting = try await server.database.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'").scalar
                if waiting != "0" { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            release.signal()
            let requested = try await amendment.value
            #expect(try doc(requested)["waiting_for"].text == "approval", "\(requested)")
            let removed = try await removal.value
            #expect(removed.errorCode == "CONFLICT", "\(removed.final)")
            #expect(try await server.database.execute("SELECT removed_at IS NULL FROM orderly.addresses WHERE id = $1", [String(address)]).scalar == "t")
            await rita.close()
        }
    }

    /// Two changes raising two orders of one customer at once are judged against its credit
    /// limit one after the other (the customer's credit lock): together over the limit, exactly
    /// one goes on hold. Without the lock each saw the other's old total and both passed.
    @Test func twoOrdersRaisedAtOnceAreJudgedAgainstTheCreditLimitInTurn() async throws {
        try await withTestServer { server in
            _ = try await Self.prepare(server)
            let fran = try await server.connect(as: "fran", password: "fran-password")
            let rita = try await server.connect(as: "rita", password: "rita-password")
            for round in 1...3 {
                // A customer of its own each round: net 30, a limit of 700.
                let customer = try await server.database.createCustomer(by: "rita", name: "Tight \(round)", email: "tight\(round)@example.com",
                                                                        phone: "+494012345\(round)0")
                #expect(try await fran.request("CUSTOMER TERMS \(customer) payment_terms=net_30 credit_limit=700").isSuccess)
                // 300 + 100 open; raised to 500 and 300 each alone fits 700, both together do not.
                let (mills, millsStatus) = try await Self.create(rita, customer, #"[{"sku":"MILL-1-STD","qty":3}]"#)
                let (gizmos, gizmosStatus) = try await Self.create(rita, customer, #"[{"sku":"GIZ-1-STD","qty":10}]"#)
                #expect(millsStatus == "ready" && gizmosStatus == "ready")
                let replies = try await raceRequests(server, 2, users: [("rita", "rita-password"), ("cas", "cas-password")]) { index in
                    index == 0 ? #"ORDER AMEND \#(mills) changes=[{"action":"set_line","line":1,"qty":5}] reason="round \#(round)""#
                               : #"ORDER AMEND \#(gizmos) changes=[{"action":"set_line","line":1,"qty":30}] reason="round \#(round)""#
                }
                #expect(replies.allSatisfy { $0.isSuccess }, "\(replies.map { $0.final })")
                let held = try await server.database.execute(
                    "SELECT count(*) FROM orderly.orders WHERE id IN ($1, $2) AND status = 'on_hold' AND hold_reason = 'credit_limit'",
                    [String(mills), String(gizmos)]).scalar
                #expect(held == "1", "round \(round): one of the two goes on hold, not \(held ?? "?")")
            }
            await rita.close()
            await fran.close()
        }
    }
}
