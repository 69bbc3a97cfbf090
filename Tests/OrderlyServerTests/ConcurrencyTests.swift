import OrderlyClient
import OrderlyTestSupport
import Testing

@Suite struct ConcurrencyTests {
    @Test func twoHundredConnectionsAuthPingAndWhoamiAtOnce() async throws {
        // 200 bcrypt checks share 8 connections with every other suite running in parallel: a
        // generous pool wait keeps this about serving everyone, not about how fast the machine is.
        try await withTestServer(configure: { $0.poolSize = 8; $0.poolWaitSeconds = 120 }) { server in
            try await server.database.createUser("crowd", password: "crowd-password", roles: ["warehouse"])
            let results = try await withThrowingTaskGroup(of: String?.self) { group in
                for _ in 0..<200 {
                    group.addTask {
                        let client = try await server.connect()
                        let auth = try await client.authenticate(username: "crowd", password: "crowd-password")
                        let ping = try await client.request("PING")
                        let whoami = try await client.request("WHOAMI")
                        await client.close()
                        let ok = auth.isSuccess && ping.final == "+PONG" && whoami.data.first?.contains("warehouse") == true
                        return ok ? nil : "\(auth.final) / \(ping.final) / \(whoami.final)"
                    }
                }
                return try await group.reduce(into: [String?]()) { $0.append($1) }
            }
            #expect(results.count == 200)
            let failures = results.compactMap { $0 }
            #expect(failures.isEmpty, "\(failures.count) failed, e.g. \(failures.prefix(3))")
        }
    }
}
