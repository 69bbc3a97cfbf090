import Foundation
import OrderlyClient
import OrderlyServer
import OrderlyTestSupport
import Testing

/// Carrier tracking over the three ways in — TRACKING EVENT over TCP, the webhook over real HTTP
/// (curl, with the signature made by `openssl dgst` as the README shows), and
/// `orderly tracking import` — applying one event once; a bad signature changing nothing; events
/// out of order never moving a shipment back; SHIPMENT ROUTE being GeoJSON a parser accepts.
@Suite struct TrackingTests {
    static func demo(_ database: TestDatabase) async throws {
        for loader in ["admin.create_demo_users()", "admin.load_demo_catalog()", "admin.load_demo_customer()"] {
            _ = try await database.execute("SELECT count(*) FROM \(loader)")
        }
        _ = try await database.execute("SELECT admin.set_user_carrier('carrier', 'dhl')")
    }

    static func withTracking<T>(_ body: (TestServer, _ shipment: Int, _ secret: String) async throws -> T) async throws -> T {
        try await withTestServer(prepare: demo, configure: { $0.webhook = .init(host: "127.0.0.1", port: 0) }) { server in
            let customerId = try #require(try await server.database.execute(
                "SELECT customer_id FROM orderly.users WHERE username = 'customer'").scalar)
            let rep = try await server.connect(as: "sales_rep", password: "sales_rep-demo")
            let created = try await rep.request(#"ORDER CREATE customer=\#(customerId) submit=true lines=[{"sku":"ACC-CABLE","qty":1}]"#)
            let createdLine = try #require(created.data.first, "\(created.final)")
            let order = try #require(try doc(createdLine)["id"].int)
            await rep.close()
            let warehouse = try await server.connect(as: "warehouse", password: "warehouse-demo")
            let shipped = try await warehouse.request(#"SHIPMENT CREATE order=\#(order) lines=[{"line":1,"qty":1}] carrier=dhl tracking_no=JD100"#)
            let shippedLine = try #require(shipped.data.first, "\(shipped.final)")
            let shipment = try #require(try doc(shippedLine)["id"].int)
            await warehouse.close()
            // The parcel left two hours ago: the tests' events are dated within that time (an
            // event from before a shipment left is refused).
            try await server.database.execute("UPDATE orderly.shipments SET shipped_at = now() - interval '2 hours' WHERE id = $1", [String(shipment)])
            let secret = try #require(try await server.database.execute("SELECT admin.rotate_carrier_secret('dhl')").scalar)
            return try await body(server, shipment, secret)
        }
    }

    /// An ISO time `minutesAgo` before now (events may not come from the future).
    static func time(_ minutesAgo: Int) -> String {
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: Date().addingTimeInterval(Double(-minutesAgo * 60)))
    }

    /// POSTs body to the webhook with curl, signed with openssl as the README shows; the
    /// status and the reply.
    static func post(_ server: TestServer, path: String = "/carriers/dhl/events", body: String, secret: String,
                     extra: [String] = []) async throws -> (status: Int, body: String) {
        let port = try #require(server.server.webhookPort)
        let script = """
            sig=$(printf '%s' "$BODY" | openssl dgst -sha256 -hmac "$SECRET" | sed 's/^.* //')
            curl -s -w '\\n%{http_code}' -H 'Content-Type: application/json' -H "X-Orderly-Signature: sha256=$sig" \
                 "$@" --data-binary "$BODY" "http://127.0.0.1:\(port)\(path)"
            """
        let output = try await Program.run("/bin/bash", ["-c", script, "post"] + extra, environment: ["BODY": body, "SECRET": secret]).stdout
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n").trimmingCharacters(in: .newlines))
    }

    static func count(_ server: TestServer, _ sql: String) async throws -> Int {
        Int(try await server.database.execute(sql).scalar ?? "") ?? -1
    }

    /// Values the database itself refuses (a NUL character, an offset out of range) are the
    /// carrier's mistake: 400, never the 500 a carrier would retry, and nothing is stored.
    @Test func aValueTheDatabaseRefusesIsABadRequest() async throws {
        try await Self.withTracking { server, _, secret in
            let at = Self.time(30)
            let bodies = [
                #"{"event_id":"ev-nul","tracking_no":"JD100","code":"in_transit","at":"\#(at)","note":"a\u0000b"}"#,
                #"{"event_id":"ev-nul-key","tracking_no":"JD100","code":"in_transit","at":"\#(at)","lo\u0000c":"x"}"#,
                #"{"event_id":"ev-offset","tracking_no":"JD100","code":"in_transit","at":"2026-12-05T22:00:00+99:00"}"#,
            ]
            for body in bodies {
                let answer = try await Self.post(server, body: body, secret: secret)
                #expect(answer.status == 400, "\(body): \(answer.status) \(answer.body)")
                #expect(try doc(answer.body)["error"].text?.isEmpty == false, "\(answer.body)")
            }
            #expect(try await Self.count(server, "SELECT count(*) FROM orderly.tracking_events") == 0)

            // A raw NUL byte, signed over the whole body: PostgreSQL's text would end there and
            // the signature be checked over what comes before it only.
            let file = TemporaryFiles.path("nul-body.json")
            var raw = Data(#"{"event_id":"ev-raw-nul","tracking_no":"JD100","code":"in_transit","at":"\#(at)"}"#.utf8)
            raw.append(0)
            try raw.write(to: URL(fileURLWithPath: file))
            let port = try #require(server.server.webhookPort)
            let script = """
                sig=$(openssl dgst -sha256 -hmac "$SECRET" < "$FILE" | sed 's/^.* //')
                curl -s -w '\\n%{http_code}' -H 'Content-Type: application/json' -H "X-Orderly-Signature: sha256=$sig" \
                     --data-binary @"$FILE" "http://127.0.0.1:\(port)/carriers/dhl/events"
                """
            let output = try await Program.run("/bin/bash", ["-c", script], environment: ["FILE": file, "SECRET": secret]).stdout
            #expect(output.hasSuffix("\n400") && output.contains("NUL byte"), "\(output)")
            #expect(try await Self.count(server, "SELECT count(*) FROM orderly.tracking_events") == 0)
        }
    }

    @Test func oneEventByProtocolWebhookAndFileIsAppliedOnce() async throws {
        try await Self.withTracking { server, shipment, secret in
            let at = Self.time(30)
            let body = #"{"event_id":"ev-1","tracking_no":"JD100","code":"in_transit","at":"\#(at)","location":"Kassel","lat":51.31,"lon":9.48}"#
            let first = try await Self.post(server, body: body, secret: secret)
            #expect(first.status == 200, "\(first.body)")
            #expect(try doc(first.body)["applied"].bool == true)
            #expect(try doc(first.body)["shipment"].int == shipment)

            // The same event by the protocol, as the carrier's login: the webhook's reply.
            let carrier = try await server.connect(as: "carrier", password: "carrier-demo")
            let again = try await carrier.request(
                "TRACKING EVENT carrier=dhl event_id=ev-1 tracking_no=JD100 code=in_transit at=\(at) location=Kassel lat=51.31 lon=9.48")
            #expect(again.isSuccess, "\(again.final)")
            let againLine = try #require(again.data.first)
            #expect(try doc(againLine) == (try doc(first.body)))
            // Not its own shipments: refused.
            let other = try await carrier.request("TRACKING EVENT carrier=ups event_id=ev-9 shipment=\(shipment) code=in_transit at=\(at)")
            #expect(other.final.hasPrefix("-FORBIDDEN"), "\(other.final)")
            await carrier.close()

            // And from a file, beside a new event and a bad line.
            let file = TemporaryFiles.path("tracking", suffix: ".csv")
            try """
                carrier,event_id,tracking_no,code,at,location,lat,lon,note
                dhl,ev-1,JD100,in_transit,\(at),Kassel,51.31,9.48,
                dhl,ev-2,JD100,out_for_delivery,\(Self.time(10)),"Hamburg, Hafen",53.54,9.98,"on the van"
                dhl,ev-3,JD100,teleported,\(Self.time(5)),,,,
                dhl,ev-2,JD100,out_for_delivery,\(Self.time(10)),"Hamburg, Hafen",53.54,9.98,"on the van"
                """.write(toFile: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: file) }
            let run = try await CLI.run(["--port", String(server.port), "--user", "logistics", "tracking", "import", file],
                                        environment: ["ORDERLY_PASSWORD": "logistics-demo"])
            #expect(run.status == 1, "a rejected line: exit 1; \(run.stderr)")
            // ev-2 twice in the file: applied once, then a replay (not counted twice).
            #expect(run.stdout.contains("1 applied, 0 stored as older, 2 replays, 1 rejected"), "\(run.stdout)")
            #expect(run.stdout.contains("line 4: INVALID code must be one of"), "\(run.stdout)")
            #expect(!run.stderr.contains("["), "no progress bar when standard error is not a terminal")

            #expect(try await Self.count(server, "SELECT count(*) FROM orderly.tracking_events WHERE event_id = 'ev-1'") == 1)
            #expect(try await Self.count(server, "SELECT count(*) FROM orderly.audit_log WHERE action = 'shipment.tracking' AND after ->> 'event_id' = 'ev-1'") == 1)
            #expect(try await server.database.execute("SELECT tracking_code || ' ' || tracking_location FROM orderly.shipments WHERE id = $1",
                                                      [String(shipment)]).scalar == "out_for_delivery Hamburg, Hafen")
        }
    }

    @Test func aBadSignatureIs401AndChangesNothing() async throws {
        try await Self.withTracking { server, _, secret in
            let state = "SELECT (SELECT count(*) FROM orderly.tracking_events) || '/' || (SELECT count(*) FROM orderly.audit_log)"
            let before = try await server.database.execute(state).scalar
            let body = #"{"event_id":"ev-x","tracking_no":"JD100","code":"exception","at":"\#(Self.time(3))"}"#
            let forged = try await Self.post(server, body: body, secret: "whsec_guess")
            #expect(forged.status == 401)
            #expect(forged.body == #"{"error":"bad signature"}"#)
            let tampered = try await Self.post(server, body: body, secret: secret, extra: ["--data-binary", "x"])
            #expect(tampered.status == 401, "a body changed after signing")
            #expect(try await Self.post(server, path: "/carriers/dhl/other", body: body, secret: secret).status == 404)
            #expect(try await Self.post(server, body: body, secret: secret, extra: ["-X", "PUT"]).status == 405)
            #expect(try await Self.post(server, body: body, secret: secret, extra: ["-H", "Content-Type: text/plain"]).status == 415)
            let huge = #"{"event_id":"ev-x","note":"\#(String(repeating: "x", count: 70_000))"}"#
            #expect(try await Self.post(server, body: huge, secret: secret).status == 413)
            #expect(try await server.database.execute(state).scalar == before)
            // Malformed or unknown: 400 naming the field, 404 for a shipment that is not there.
            let malformed = try await Self.post(server, body: #"{"event_id":"ev-x","tracking_no":"JD100","code":"in_transit","at":"soon"}"#, secret: secret)
            #expect(malformed.status == 400)
            #expect(try doc(malformed.body)["field"].text == "at")
            let unknown = try await Self.post(server, body: #"{"event_id":"ev-x","tracking_no":"NOPE","code":"in_transit","at":"\#(Self.time(3))"}"#, secret: secret)
            #expect(unknown.status == 404)
        }
    }

    @Test func eventsOutOfOrderNeverMoveAShipmentBack() async throws {
        try await Self.withTracking { server, shipment, _ in
            let carrier = try await server.connect(as: "carrier", password: "carrier-demo")
            func post(_ id: String, _ code: String, minutesAgo: Int, _ extra: String = "") async throws -> JSONValue {
                let reply = try await carrier.request(
                    "TRACKING EVENT carrier=dhl event_id=\(id) shipment=\(shipment) code=\(code) at=\(Self.time(minutesAgo)) \(extra)")
                #expect(reply.isSuccess, "\(reply.final)")
                let line = try #require(reply.data.first)
                return try doc(line)
            }
            #expect(try await post("o-2", "out_for_delivery", minutesAgo: 20)["applied"].bool == true)
            #expect(try await post("o-1", "in_transit", minutesAgo: 60)["applied"].bool == false)
            let staff = try await server.connect(as: "logistics", password: "logistics-demo")
            func show() async throws -> JSONValue {
                let line = try #require(try await staff.request("SHIPMENT SHOW \(shipment)").data.first)
                return try doc(line)
            }
            var shown = try await show()
            #expect(shown["tracking"]["code"].text == "out_for_delivery")
            #expect(try await post("o-3", "delivered", minutesAgo: 5, "signed_by=\"R. Receiver\"")["shipment_status"].text == "delivered")
            #expect(try await post("o-0", "picked_up", minutesAgo: 90)["applied"].bool == false)
            shown = try await show()
            #expect(shown["status"].text == "delivered")
            #expect(shown["tracking"]["code"].text == "delivered")
            #expect(shown["signed_by"].text == "R. Receiver")
            #expect(try await server.database.execute(
                "SELECT o.status FROM orderly.orders o JOIN orderly.shipments s ON s.order_id = o.id WHERE s.id = $1",
                [String(shipment)]).scalar == "delivered")
            await staff.close()
            await carrier.close()
        }
    }

    @Test func theRouteIsGeoJSONInLonLatOrder() async throws {
        try await Self.withTracking { server, shipment, secret in
            let points = [(id: "r-1", lat: 53.55, lon: 9.99, ago: 50), (id: "r-3", lat: 48.14, lon: 11.58, ago: 10),
                          (id: "r-2", lat: 50.11, lon: 8.68, ago: 30)]
            for p in points {
                let body = #"{"event_id":"\#(p.id)","shipment":\#(shipment),"code":"in_transit","at":"\#(Self.time(p.ago))","lat":\#(p.lat),"lon":\#(p.lon)}"#
                #expect(try await Self.post(server, body: body, secret: secret).status == 200)
            }
            let customer = try await server.connect(as: "customer", password: "customer-demo")
            let reply = try await customer.request("SHIPMENT ROUTE \(shipment)")
            let text = try #require(reply.data.first, "\(reply.final)")
            await customer.close()
            // Foundation's parser, not ours.
            let json = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
            #expect(json["type"] as? String == "FeatureCollection")
            let features = try #require(json["features"] as? [[String: Any]])
            #expect(features.allSatisfy { $0["type"] as? String == "Feature" && $0["properties"] is [String: Any] })
            let line = try #require(features.first?["geometry"] as? [String: Any])
            #expect(line["type"] as? String == "LineString")
            let coordinates = try #require(line["coordinates"] as? [[Double]])
            // In time order (r-1, r-2, r-3), each [lon, lat].
            #expect(coordinates == [[9.99, 53.55], [8.68, 50.11], [11.58, 48.14]])
            let pointFeatures = features.dropFirst().compactMap { $0["geometry"] as? [String: Any] }
            #expect(pointFeatures.count == 3)
            #expect(pointFeatures.allSatisfy { $0["type"] as? String == "Point" && ($0["coordinates"] as? [Double])?.count == 2 })
            let carrier = try await server.connect(as: "carrier", password: "carrier-demo")
            #expect(try await carrier.request("SHIPMENT ROUTE \(shipment)").final.hasPrefix("-FORBIDDEN"), "a carrier's login reads no orders")
            await carrier.close()
        }
    }

    /// Exactly once: the same event sent at the same moment over eight connections and four
    /// webhook requests is one row, one audit entry, and one reply for all.
    @Test func theSameEventRacingOverProtocolAndWebhookIsAppliedOnce() async throws {
        try await Self.withTracking { server, shipment, secret in
            let at = Self.time(15)
            let line = "TRACKING EVENT carrier=dhl event_id=race-1 shipment=\(shipment) code=out_for_delivery at=\(at) location=Altona"
            let body = #"{"event_id":"race-1","shipment":\#(shipment),"code":"out_for_delivery","at":"\#(at)","location":"Altona"}"#
            async let posts = withThrowingTaskGroup(of: (status: Int, body: String).self) { group in
                for _ in 0..<4 { group.addTask { try await Self.post(server, body: body, secret: secret) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let replies = try await raceRequests(server, 8, users: [("carrier", "carrier-demo")]) { _ in line }
            let webhook = try await posts
            let finals = replies.map { $0.final }, statuses = webhook.map { $0.status }
            #expect(finals.allSatisfy { $0.hasPrefix("+OK") }, "\(finals)")
            #expect(statuses.allSatisfy { $0 == 200 }, "\(webhook)")
            let answers = Set(replies.compactMap(\.data.first).map { JSONValue(parsing: $0)?.compactText ?? "?" }
                              + webhook.map { JSONValue(parsing: $0.body)?.compactText ?? "?" })
            #expect(answers.count == 1, "one reply for all: \(answers)")
            #expect(try await Self.count(server, "SELECT count(*) FROM orderly.tracking_events WHERE event_id = 'race-1'") == 1)
            #expect(try await Self.count(server, "SELECT count(*) FROM orderly.audit_log WHERE action = 'shipment.tracking' AND after ->> 'event_id' = 'race-1'") == 1)
        }
    }

    /// Past --webhook-rate requests a minute from one address: 429 with Retry-After, before the
    /// database is asked.
    @Test func tooManyWebhookRequestsAre429() async throws {
        try await withTestServer(configure: {
            $0.webhook = .init(host: "127.0.0.1", port: 0)
            $0.webhook?.requestsPerMinute = 12   // bursts of 2
        }) { server in
            var statuses: [Int] = []
            for _ in 0..<4 {
                statuses.append(try await Self.post(server, body: #"{"event_id":"r"}"#, secret: "x").status)
            }
            #expect(statuses == [401, 401, 429, 429], "\(statuses)")
            let headers = try await Self.post(server, body: "{}", secret: "x", extra: ["-D", "/dev/stdout", "-o", "/dev/null"]).body
            #expect(headers.lowercased().contains("retry-after: "), "\(headers)")
        }
    }

    /// A client that drips its request body, a byte at a time, is closed once the request is not
    /// whole within the webhook's idle time, although it never falls silent that long.
    @Test func aDrippedRequestIsClosed() async throws {
        try await withTestServer(configure: {
            $0.webhook = .init(host: "127.0.0.1", port: 0)
            $0.webhook?.idleSeconds = 2
        }) { server in
            let client = try await RawClient.connect(port: try #require(server.server.webhookPort))
            let head = "POST /carriers/dhl/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            try await client.write(Array(head.utf8)).get()
            let started = ContinuousClock.now
            while !client.isClosed && ContinuousClock.now - started < .seconds(10) {
                _ = try? await client.write([UInt8(ascii: " ")]).get()
                try await Task.sleep(for: .milliseconds(500))
            }
            #expect(client.isClosed)
            #expect(ContinuousClock.now - started < .seconds(5))
            await client.close()
        }
    }

    /// Malformed HTTP is answered 400 with "Connection: close", and closed then — not when the
    /// idle time (30 s here) runs out.
    @Test func malformedHTTPIsAnsweredAndClosedAtOnce() async throws {
        try await withTestServer(configure: { $0.webhook = .init(host: "127.0.0.1", port: 0) }) { server in
            for request in ["\u{16}\u{03}\u{01}garbage\r\n\r\n",
                            "POST /carriers/dhl/events HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"] {
                let client = try await RawClient.connect(port: try #require(server.server.webhookPort), reading: true)
                try await client.write(Array(request.utf8)).get()
                let started = ContinuousClock.now
                while !client.isClosed && ContinuousClock.now - started < .seconds(20) {
                    try await Task.sleep(for: .milliseconds(50))
                }
                #expect(client.isClosed && ContinuousClock.now - started < .seconds(10), "\(request.debugDescription)")
                #expect(client.text.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(client.text)")
                await client.close()
            }
        }
    }

    /// A body announced larger than the limit is refused when its head arrives (413, closed), not
    /// after the body (which may never come) or the request's deadline.
    @Test func aBodyAnnouncedTooLargeIsRefusedAtOnce() async throws {
        try await withTestServer(configure: { $0.webhook = .init(host: "127.0.0.1", port: 0) }) { server in
            let client = try await RawClient.connect(port: try #require(server.server.webhookPort), reading: true)
            let head = "POST /carriers/dhl/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n"
            try await client.write(Array(head.utf8)).get()
            let started = ContinuousClock.now
            while !client.isClosed && ContinuousClock.now - started < .seconds(60) {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(client.isClosed)
            #expect(client.text.hasPrefix("HTTP/1.1 413 Payload Too Large\r\n"), "\(client.text)")
            await client.close()
        }
    }

    /// A wrong signature (the database's 401) ends the connection like a missing one: strangers
    /// cannot keep the webhook's connections with signed-looking requests.
    @Test func aWrongSignatureClosesTheConnection() async throws {
        try await withTestServer(configure: { $0.webhook = .init(host: "127.0.0.1", port: 0) }) { server in
            let client = try await RawClient.connect(port: try #require(server.server.webhookPort), reading: true)
            let body = "{}"
            let request = "POST /carriers/dhl/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + "X-Orderly-Signature: sha256=00\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body
            try await client.write(Array(request.utf8)).get()
            let started = ContinuousClock.now
            while !client.isClosed && ContinuousClock.now - started < .seconds(20) { try await Task.sleep(for: .milliseconds(20)) }
            #expect(client.isClosed && client.text.hasPrefix("HTTP/1.1 401 Unauthorized\r\n"), "\(client.text)")
            #expect(client.text.contains("Connection: close"), "\(client.text)")
            await client.close()
        }
    }

    /// Past --webhook-max-connections open at once (or its share per address), one more is
    /// answered 503 and closed; a connection closed frees its place. A request no carrier's
    /// working system sends (here a wrong path) is answered and the connection closed, so that
    /// such requests cannot hold one.
    @Test func connectionsOverTheCapAreAnswered503() async throws {
        for (all, perAddress) in [(2, 32), (32, 2)] {
            try await withTestServer(configure: {
                $0.webhook = .init(host: "127.0.0.1", port: 0)
                $0.webhook?.maxConnections = all
                $0.webhook?.maxConnectionsPerAddress = perAddress
            }) { server in
                let port = try #require(server.server.webhookPort)
                /// The first line of the answer, once its head is whole or the connection closed.
                func answer(_ client: RawClient, within limit: Duration = .seconds(10)) async throws -> String {
                    let started = ContinuousClock.now
                    while !client.text.contains("\r\n\r\n") && !client.isClosed && ContinuousClock.now - started < limit {
                        try await Task.sleep(for: .milliseconds(20))
                    }
                    return client.text.components(separatedBy: "\r\n").first ?? ""
                }
                // Two connections in the middle of a request: they hold their places.
                var held: [RawClient] = []
                for _ in 0..<2 {
                    let client = try await RawClient.connect(port: port, reading: true)
                    try await client.write(Array("POST /carriers/dhl/events HTTP/1.1\r\nHost: x\r\n".utf8)).get()
                    held.append(client)
                }
                // A third is refused (tried again until the server has counted the two).
                var refused = false
                let started = ContinuousClock.now
                while !refused && ContinuousClock.now - started < .seconds(10) {
                    let client = try await RawClient.connect(port: port, reading: true)
                    refused = try await answer(client, within: .milliseconds(500)) == "HTTP/1.1 503 Service Unavailable"
                    await client.close()
                }
                #expect(refused, "\(all) at most, \(perAddress) per address")
                // One closed: its place is served again, and a wrong path ends the connection.
                await held.removeFirst().close()
                var served = false
                while !served && ContinuousClock.now - started < .seconds(20) {
                    let client = try await RawClient.connect(port: port, reading: true)
                    try? await client.write(Array("GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n".utf8)).get()
                    served = try await answer(client) == "HTTP/1.1 404 Not Found"
                    if served {
                        let waited = ContinuousClock.now
                        while !client.isClosed && ContinuousClock.now - waited < .seconds(10) { try await Task.sleep(for: .milliseconds(20)) }
                        #expect(client.isClosed, "closed after answering a wrong path")
                    }
                    await client.close()
                }
                #expect(served, "a freed place is served again")
                for client in held { await client.close() }
            }
        }
    }

    /// On a terminal the import draws its progress bar (on standard error) and ends with the
    /// summary.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux"), "needs tmux"))
    func theImportDrawsAProgressBarOnATerminal() async throws {
        try await Self.withTracking { server, shipment, _ in
            let file = TemporaryFiles.path("tracking", suffix: ".csv")
            var csv = "carrier,event_id,shipment,code,at\n"
            for i in 0..<40 { csv += "dhl,bar-\(i),\(shipment),in_transit,\(Self.time(60 - i))\n" }
            try csv.write(toFile: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: file) }
            let tmux = try await Tmux.start("env HOME=\(CLI.home) ORDERLY_PASSWORD=logistics-demo \(CLI.binary.path) --port \(server.port) --user logistics tracking import \(file); echo \"[exit $?]\"; sleep 120")
            do {
                try await tmux.waitFor { screen, _ in screen.contains { $0.hasPrefix("[exit ") } }
                let screen = try await tmux.snapshot().screen
                #expect(screen.contains { $0.hasPrefix("[##############################] 40/40 applied 40, replays 0, rejected 0") },
                        "\(screen)")
                #expect(screen.joined(separator: " ").contains("40 applied, 0 stored as older, 0 replays, 0 rejected"), "\(screen)")
                #expect(screen.contains("[exit 0]"))
                try await tmux.kill()
            } catch {
                try? await tmux.kill()
                throw error
            }
        }
    }
}
