import OrderlyClient
import OrderlyTestSupport
import Testing

@Suite struct ConcurrencyTests {
    @Test func twoHundredConnectionsAuthPingAndWhoamiAtOnce() async throws {
        try await withTestServer(configure: { $0.poolSize = 8 }) { server in
            try await server.database.createUser("crowd", password: "crowd-password", roles: ["warehouse"])
            let results = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<200 {
                    group.addTask {
                        let client = try await server.connect()
                        let auth = try await client.authenticate(username: "crowd", password: "crowd-password")
                        let ping = try await client.request("PING")
                        let whoami = try await client.request("WHOAMI")
                        await client.close()
                        return auth.isSuccess && ping.final == "+PONG" && whoami.data.first?.contains("warehouse") == true
                    }
                }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(results.count == 200)
            #expect(results.allSatisfy { $0 })
        }
    }
}
