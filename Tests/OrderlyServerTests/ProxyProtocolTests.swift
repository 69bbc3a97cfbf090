import OrderlyServer
import OrderlyTestSupport
import Testing

/// PROXY protocol v2 from a trusted proxy (`--trusted-proxy`): the header's client address is the
/// one every per-address limit and the audit log use. The headers are written by hand here, byte
/// for byte as haproxy's `send-proxy-v2` writes them; `HaproxyTests` checks with the real haproxy.
@Suite struct ProxyProtocolTests {
    static let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    /// PROXY, TCP over IPv4, from `source` to 127.0.0.1:7400.
    static func header(from source: [UInt8], port: UInt16 = 40000) -> [UInt8] {
        signature + [0x21, 0x11, 0x00, 12] + source + [127, 0, 0, 1] + [UInt8(port >> 8), UInt8(port & 0xff), 0x1C, 0xE8]
    }

    /// PROXY, TCP over IPv6, from `2001:db8::7`.
    static let ipv6Header: [UInt8] = signature + [0x21, 0x21, 0x00, 36]
        + [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [7]
        + [UInt8](repeating: 0, count: 15) + [1] + [0x9C, 0x40, 0x1C, 0xE8]

    /// LOCAL: the proxy's own connection (a health check), no address.
    static let localHeader: [UInt8] = signature + [0x20, 0x00, 0x00, 0x00]

    static func trusting(_ ranges: String...) -> (inout ServerConfiguration) -> Void {
        { configuration in
            configuration.trustedProxies = ranges.compactMap(AddressRange.init)
            configuration.login.firstDelaySeconds = 60
        }
    }

    /// Sends `bytes` then `lines`, and returns everything received once `replies` replies are in
    /// (or the connection closed).
    static func exchange(_ server: TestServer, _ bytes: [UInt8], _ lines: [String], replies: Int) async throws -> String {
        let client = try await RawClient.connect(port: server.port, reading: true)
        try await client.write(bytes + Array(lines.map { $0 + "\r\n" }.joined().utf8)).get()
        let deadline = ContinuousClock.now + .seconds(30)
        while client.finalLineCount < replies && !client.isClosed && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        let text = client.text
        await client.close()
        return text
    }

    static func lastLoginAddress(_ server: TestServer, _ username: String) async throws -> String? {
        try await server.database.execute("""
            SELECT a.after ->> 'client_addr' FROM orderly.audit_log a JOIN orderly.users u ON u.id::text = a.entity_id
            WHERE a.action = 'user.login' AND u.username = $1 ORDER BY a.id DESC LIMIT 1
            """, [username]).scalar
    }

    @Test func theHeadersAddressIsTheClientsForLoginsAndTheAudit() async throws {
        try await withTestServer(configure: Self.trusting("127.0.0.0/8")) { server in
            try await server.database.createUser("rita", password: "rita-password", roles: ["sales_rep"])
            let v4 = try await Self.exchange(server, Self.header(from: [203, 0, 113, 7]), ["AUTH rita rita-password"], replies: 1)
            #expect(v4.hasPrefix("#orderly "), "\(v4)")
            #expect(v4.contains("+OK authenticated as rita"), "\(v4)")
            #expect(try await Self.lastLoginAddress(server, "rita") == "203.0.113.7")
            let v6 = try await Self.exchange(server, Self.ipv6Header, ["AUTH rita rita-password"], replies: 1)
            #expect(v6.contains("+OK authenticated as rita"), "\(v6)")
            #expect(try await Self.lastLoginAddress(server, "rita") == "2001:db8::7")
        }
    }

    @Test func failuresFromOneClientAddressDoNotHoldTheUserBackAtAnother() async throws {
        try await withTestServer(configure: Self.trusting("127.0.0.1")) { server in
            try await server.database.createUser("dave", password: "dave-password", roles: [])
            let attacker = Self.header(from: [203, 0, 113, 66])
            let guesses = Array(repeating: "AUTH dave guess", count: 5) + ["AUTH dave dave-password"]
            let attacked = try await Self.exchange(server, attacker, guesses, replies: 6)
            #expect(attacked.components(separatedBy: "-AUTH_FAILED").count - 1 == 5, "\(attacked)")
            #expect(attacked.contains("-LOCKED too many failed logins for this username from your address; try again in "), "\(attacked)")
            // Dave himself, from his own office, through the same proxy.
            let office = try await Self.exchange(server, Self.header(from: [198, 51, 100, 9]), ["AUTH dave dave-password"], replies: 1)
            #expect(office.contains("+OK authenticated as dave"), "\(office)")
        }
    }

    @Test func aTrustedProxysConnectionWithoutAHeaderIsClosedUnanswered() async throws {
        try await withTestServer(configure: Self.trusting("127.0.0.1/32")) { server in
            let text = try await Self.exchange(server, [], ["HELLO"], replies: 1)
            #expect(text.isEmpty, "\(text)")
        }
    }

    @Test func aHealthCheckSpeaksForTheProxyItself() async throws {
        try await withTestServer(configure: Self.trusting("127.0.0.1/32")) { server in
            let text = try await Self.exchange(server, Self.localHeader, ["PING"], replies: 1)
            #expect(text.contains("+PONG"), "\(text)")
        }
    }

    @Test func aHeaderArrivingByteByByteIsRead() async throws {
        try await withTestServer(configure: Self.trusting("127.0.0.1/32")) { server in
            try await server.database.createUser("rita", password: "rita-password", roles: ["sales_rep"])
            let client = try await RawClient.connect(port: server.port, reading: true)
            for byte in Self.header(from: [192, 0, 2, 1]) + Array("AUTH rita rita-password\r\n".utf8) {
                try await client.write([byte]).get()
            }
            let deadline = ContinuousClock.now + .seconds(30)
            while client.finalLineCount < 1 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            #expect(client.text.contains("+OK authenticated as rita"), "\(client.text)")
            await client.close()
            #expect(try await Self.lastLoginAddress(server, "rita") == "192.0.2.1")
        }
    }

    /// From anyone not trusted, a header is just bytes: its first lines are empty, then a NUL
    /// (BAD_SYNTAX), then "QUIT" — the specification chose the signature so that a server that
    /// does not speak the protocol ends the connection.
    @Test func anUntrustedPeersHeaderIsNotHonoured() async throws {
        try await withTestServer(configure: Self.trusting("10.0.0.0/8")) { server in
            let text = try await Self.exchange(server, Self.header(from: [203, 0, 113, 7]), ["AUTH rita rita-password"], replies: 10)
            #expect(text.contains("+OK bye"), "\(text)")
            #expect(!text.contains("authenticated"), "\(text)")
        }
    }

    @Test func addressRangesParseAndMatch() {
        #expect(AddressRange("10.0.0.0/8")?.contains("10.200.3.4") == true)
        #expect(AddressRange("10.0.0.0/8")?.contains("11.0.0.1") == false)
        #expect(AddressRange("192.168.1.17")?.contains("192.168.1.17") == true)
        #expect(AddressRange("192.168.1.17")?.contains("192.168.1.18") == false)
        #expect(AddressRange("172.16.0.0/12")?.contains("172.31.255.255") == true)
        #expect(AddressRange("172.16.0.0/12")?.contains("172.32.0.0") == false)
        #expect(AddressRange("2001:db8::/32")?.contains("2001:db8:ffff::1") == true)
        #expect(AddressRange("2001:db8::/32")?.contains("2001:db9::1") == false)
        #expect(AddressRange("10.0.0.0/8")?.contains("::ffff:10.1.2.3") == true)
        #expect(AddressRange("0.0.0.0/0")?.contains("203.0.113.7") == true)
        for bad in ["10.0.0.0/33", "10.0.0/8", "example.org", "10.0.0.0/", "/8", "::1/129", "10.0.0.0/-1"] {
            #expect(AddressRange(bad) == nil, "\(bad)")
        }
    }
}
