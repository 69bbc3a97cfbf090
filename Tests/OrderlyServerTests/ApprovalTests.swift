import OrderlyClient
import OrderlyServer
import OrderlyTestSupport
import Testing

/// Approvals over TCP with the demo rules (`admin.load_demo_approvals`): above 50 000 a sales
/// manager, then a finance manager, then a production manager; standard orders up to 10 000 a
/// sales supervisor.
@Suite struct ApprovalTests {
    static let staff: [(name: String, role: String)] = [
        ("rita", "sales_rep"), ("sam", "sales_manager"), ("fiona", "finance_manager"), ("paul", "production_manager"),
        ("sue", "sales_supervisor"), ("steve", "sales_supervisor"),
    ]

    /// The demo rules, the staff above (password `<name>-password`), a 1 000.00 product with
    /// plenty of stock and a customer with an address. Returns the customer id.
    static func prepare(_ database: TestDatabase) async throws -> Int {
        for person in staff { try await database.createUser(person.name, password: "\(person.name)-password", roles: [person.role]) }
        try await database.execute("SELECT * FROM admin.load_demo_approvals()")
        try await database.createStockedProduct("MILL-1", name: "Milling machine", price: "1000", stock: 500)
        return try await database.createCustomer(by: "rita", name: "Big Works", email: "buy@bigworks.example", phone: "+4930200200")
    }

    static func submit(_ client: OrderlyConnection, customer: Int, units: Int) async throws -> Int {
        let reply = try await client.request(#"ORDER CREATE customer=\#(customer) lines=[{"sku":"MILL-1-STD","qty":\#(units)}] submit=true"#)
        try #require(reply.isSuccess, "\(reply)")
        return try #require(try doc(reply.data[0])["id"].int)
    }

    @Test func aSixtyThousandOrderTravelsThroughThreeManagersInTurn() async throws {
        nonisolated(unsafe) var customer = 0
        try await withTestServer(prepare: { customer = try await Self.prepare($0) }) { server in
            let rita = try await server.connect(as: "rita", password: "rita-password", events: .stream)
            let sam = try await server.connect(as: "sam", password: "sam-password", events: .stream)
            let fiona = try await server.connect(as: "fiona", password: "fiona-password", events: .stream)
            let paul = try await server.connect(as: "paul", password: "paul-password", events: .stream)

            let order = try await Self.submit(rita, customer: customer, units: 60)
            #expect(try doc(try await rita.request("ORDER SHOW \(order)").data[0])["status"].text == "pending_approval")

            // Step 1 is the sales manager's: only he hears of it; the others have nothing yet.
            let first = try #require(await nextEvent(sam.events))
            #expect(first.hasPrefix("approval.requested "))
            let request = try doc(String(first.dropFirst("approval.requested ".count)))["payload"]
            #expect(request["order"].int == order && request["step"].int == 1 && request["of"].int == 3
                    && request["role"].text == "sales_manager" && request["total"].text == "60000.00")
            #expect(try await fiona.request("INBOX").data.isEmpty)
            #expect(try await paul.request("INBOX").data.isEmpty)
            #expect(try await fiona.request("ORDER APPROVE \(order)").errorCode == "FORBIDDEN", "not her turn")
            #expect(try await rita.request("APPROVAL QUEUE").errorCode == "FORBIDDEN", "a sales rep approves nothing")
            #expect(try await sam.request("APPROVAL QUEUE").data.count == 1)

            #expect(try await sam.request("ORDER APPROVE \(order) comment=\"price checked\"").isSuccess)
            let second = try #require(await nextEvent(fiona.events))
            #expect(second.hasPrefix("approval.requested ") && second.contains("\"step\":2"), "\(second)")
            #expect(try await paul.request("INBOX").data.isEmpty)

            #expect(try await fiona.request("ORDER APPROVE \(order)").isSuccess)
            let third = try #require(await nextEvent(paul.events))
            #expect(third.hasPrefix("approval.requested ") && third.contains("\"step\":3"), "\(third)")
            #expect(try await paul.request("ORDER APPROVE \(order)").isSuccess)

            // The creator hears the outcome; the chain shows who decided each step, in order.
            let outcome = try #require(await nextEvent(rita.events))
            #expect(outcome.hasPrefix("approval.approved "), "\(outcome)")
            // Approved, and with every line in stock on net terms, released to the warehouse at once.
            #expect(try doc(try await rita.request("ORDER SHOW \(order)").data[0])["status"].text == "ready")
            let chain = try await rita.request("APPROVAL SHOW \(order)")
            try #require(chain.isSuccess, "\(chain)")
            let text = chain.data[0]
            #expect(text.contains("\"sam\"") && text.contains("\"fiona\"") && text.contains("\"paul\"") && text.contains("price checked"))
            let positions = ["sales_manager", "finance_manager", "production_manager"].compactMap { text.range(of: $0)?.lowerBound }
            #expect(positions.count == 3 && positions == positions.sorted(), "steps in chain order")
            for client in [rita, sam, fiona, paul] { await client.close() }
        }
    }

    @Test func twoSupervisorsApproveOneStepAtOnceAndOneDecisionIsStored() async throws {
        nonisolated(unsafe) var customer = 0
        try await withTestServer(prepare: { customer = try await Self.prepare($0) }) { server in
            let rita = try await server.connect(as: "rita", password: "rita-password")
            let order = try await Self.submit(rita, customer: customer, units: 5)
            await rita.close()
            let replies = try await raceRequests(server, 2, users: [("sue", "sue-password"), ("steve", "steve-password")]) { _ in
                "ORDER APPROVE \(order)"
            }
            #expect(replies.filter(\.isSuccess).count == 1, "\(replies)")
            let loser = try #require(replies.first { !$0.isSuccess })
            #expect(loser.errorCode == "CONFLICT", "\(loser)")
            let decisions = try await server.database.execute(
                "SELECT count(*) FROM orderly.order_approvals WHERE order_id = $1 AND decided_at IS NOT NULL", [String(order)])
            #expect(decisions.rows == [["1"]])
            let status = try await server.database.execute("SELECT status FROM orderly.orders WHERE id = $1", [String(order)])
            #expect(status.rows == [["ready"]], "approved, then released to the warehouse")
        }
    }

    @Test func aFinanceManagerWhoseRoleIsRevokedMidChainIsRefused() async throws {
        nonisolated(unsafe) var customer = 0
        try await withTestServer(prepare: { customer = try await Self.prepare($0) }) { server in
            let rita = try await server.connect(as: "rita", password: "rita-password")
            let sam = try await server.connect(as: "sam", password: "sam-password")
            let fiona = try await server.connect(as: "fiona", password: "fiona-password")
            let order = try await Self.submit(rita, customer: customer, units: 60)
            #expect(try await sam.request("ORDER APPROVE \(order)").isSuccess)
            #expect(try await fiona.request("APPROVAL QUEUE").data.count == 1, "her turn")
            try await server.database.execute("SELECT admin.revoke_role('fiona', 'finance_manager')")
            // Her session ends; logged in again, she may no longer decide. Events pushed before the
            // end may still be on their way (approval.requested for sam's step reaches her through
            // LISTEN, whenever that is): they are skipped, anything else is not.
            var line = try await fiona.nextLine()
            while let pushed = line, pushed.hasPrefix(">"), !pushed.hasPrefix(">session.closed") {
                line = try await fiona.nextLine()
            }
            #expect(line == #">session.closed {"reason":"a role was revoked"}"#)
            await fiona.close()
            let again = try await server.connect(as: "fiona", password: "fiona-password")
            let refused = try await again.request("ORDER APPROVE \(order)")
            #expect(refused.errorCode == "FORBIDDEN", "\(refused)")
            await again.close()
            let step = try await server.database.execute(
                "SELECT status FROM orderly.order_approvals WHERE order_id = $1 AND step_no = 2", [String(order)])
            #expect(step.rows == [["pending"]], "nothing was decided")
            for client in [rita, sam, fiona] { await client.close() }
        }
    }

    @Test func aRejectionReleasesStockAndTellsTheCreatorWhy() async throws {
        nonisolated(unsafe) var customer = 0
        try await withTestServer(prepare: { customer = try await Self.prepare($0) }) { server in
            let rita = try await server.connect(as: "rita", password: "rita-password", events: .stream)
            let sue = try await server.connect(as: "sue", password: "sue-password")
            let order = try await Self.submit(rita, customer: customer, units: 5)
            #expect(try await sue.request("ORDER REJECT \(order)").errorCode == "INVALID", "a reason is required")
            #expect(try await sue.request("ORDER REJECT \(order) reason=\"customer over credit limit\"").isSuccess)
            let event = try #require(await nextEvent(rita.events))
            #expect(event.hasPrefix("approval.rejected ") && event.contains("customer over credit limit"), "\(event)")
            let stock = try await server.database.execute("SELECT stock_reserved FROM orderly.skus WHERE code = 'MILL-1-STD'")
            #expect(stock.rows == [["0"]])
            for client in [rita, sue] { await client.close() }
        }
    }

    /// The timer inside orderlyd: a step due after one second is reminded every second, and after
    /// two reminders escalates to the sales manager. Two servers run the timer on one database;
    /// each reminder still goes out once.
    @Test func overdueStepsAreRemindedOnceAndEscalateWithTwoServersRunningTheTimer() async throws {
        nonisolated(unsafe) var customer = 0
        try await withTestServer(prepare: { database in
            customer = try await Self.prepare(database)
            try await database.execute("SELECT admin.create_approval_rule('rush', ARRAY['standard'], NULL, 9999, 1000)")
            try await database.execute("SELECT admin.add_approval_step('rush', 1, 'sales_supervisor', interval '1 second', 'sales_manager')")
            try await database.execute("SELECT admin.set_approval_reminders(2)")
        }, configure: { $0.approvalReminderSeconds = 1 }) { server in
            var second = ServerConfiguration(host: "127.0.0.1", port: 0, database: server.database.config, poolSize: 2)
            second.approvalReminderSeconds = 1
            let other = try await OrderlyServer.start(second)
            let sue = try await server.connect(as: "sue", password: "sue-password", events: .stream)
            let sam = try await server.connect(as: "sam", password: "sam-password", events: .stream)
            let rita = try await server.connect(as: "rita", password: "rita-password")
            let order = try await Self.submit(rita, customer: customer, units: 5)

            var seen: [String] = []
            while seen.filter({ $0.hasPrefix("approval.reminder ") }).count < 3, let event = await nextEvent(sue.events) {
                seen.append(event)
            }
            let reminders = try seen.filter { $0.hasPrefix("approval.reminder ") }
                .map { try doc(String($0.dropFirst("approval.reminder ".count)))["payload"]["reminder"].int }
            #expect(seen.first?.hasPrefix("approval.requested ") == true)
            #expect(reminders == [1, 2, 3], "each reminder once, in order: \(seen)")
            let escalated = try #require(await nextEvent(sam.events))
            #expect(escalated.hasPrefix("approval.escalated ") && escalated.contains("\"order\":\(order)"), "\(escalated)")
            #expect(try await sam.request("ORDER APPROVE \(order)").isSuccess, "the escalation role may now decide")
            await other.shutdown()
            for client in [sue, sam, rita] { await client.close() }
        }
    }
}
