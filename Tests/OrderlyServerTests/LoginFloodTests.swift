import NIOConcurrencyHelpers
import OrderlyClient
import OrderlyTestSupport
import Testing

@Suite struct LoginFloodTests {
    /// 200 connections hammer wrong passwords, every one of which reaches bcrypt (no throttling
    /// limits here), while a logged-in user keeps reading an order. Only half of the pool may be
    /// checking passwords, so every ORDER SHOW gets a connection at once; the AUTHs past the gate's
    /// queue get BUSY. The pool wait is short (2 s): without the gate, ORDER SHOW would queue
    /// behind the flood's bcrypt work and get BUSY itself.
    @Test func aLoggedInUserIsAnsweredWhile200ConnectionsHammerWrongPasswords() async throws {
        try await withTestServer(configure: {
            $0.poolSize = 4
            $0.poolWaitSeconds = 2
            $0.login.addressFailures = 1_000_000
            $0.login.freeFailures = 1_000_000
            $0.login.accountFailures = 1_000_000
            $0.login.waitSeconds = 1
        }) { server in
            try await server.database.createUser("rita", password: "rita-password", roles: ["sales_rep"])
            try await server.database.createStockedProduct("MILL-1", name: "Mill", price: "100.00", stock: 10)
            let customer = try await server.database.createCustomer(by: "rita", name: "Acme", email: "buyer@acme.example", phone: "+49 40 1234567")
            let rita = try await server.connect(as: "rita", password: "rita-password")
            let created = try await rita.request(#"ORDER CREATE customer=\#(customer) lines=[{"sku":"MILL-1-STD","qty":1}]"#)
            let createdLine = try #require(created.data.first, "\(created)")
            let order = try #require(try doc(createdLine)["id"].int)

            let stop = NIOLockedValueBox(false)
            let outcomes = NIOLockedValueBox([String: Int]())
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<200 {
                    group.addTask {
                        let hammer = try await server.connect()
                        while !stop.withLockedValue({ $0 }) {
                            let reply = try await hammer.request("AUTH hammer\(index) wrong-password")
                            outcomes.withLockedValue { $0[reply.errorCode ?? "OK", default: 0] += 1 }
                        }
                        await hammer.close()
                    }
                }
                // The flood is on once the gate has refused someone: the queue is full. Should
                // that never happen, the test fails (and the hammers stop) instead of hanging.
                do {
                    try await waitUntil("the AUTH gate refuses a login with BUSY") {
                        outcomes.withLockedValue { $0["BUSY", default: 0] } > 0
                    }
                } catch {
                    stop.withLockedValue { $0 = true }
                    throw error
                }
                for _ in 0..<20 {
                    let shown = try await rita.request("ORDER SHOW \(order)")
                    #expect(shown.isSuccess, "\(shown.final)")
                }
                stop.withLockedValue { $0 = true }
                try await group.waitForAll()
            }
            let seen = outcomes.withLockedValue { $0 }
            #expect(seen["AUTH_FAILED", default: 0] > 0, "\(seen)")
            #expect(Set(seen.keys).isSubset(of: ["AUTH_FAILED", "BUSY"]), "\(seen)")
            await rita.close()
        }
    }
}
