import Foundation
import Logging
import NIOConcurrencyHelpers
import OrderlyClient
import OrderlyServer
import OrderlyTestSupport
import Testing

/// Two real orderlyd servers on one database behind a real haproxy (Debian's, TCP mode, with
/// the shipped deploy/haproxy/orderly.cfg): clients are spread over both, events cross
/// instances, and when one instance goes away its clients reconnect to the other.
///
/// That approval reminders are sent once, not once per instance, is
/// `ApprovalTests.overdueStepsAreRemindedOnceAndEscalateWithTwoServersRunningTheTimer`: two
/// servers run the timer on one database; which one a client reaches does not matter.
@Suite struct HaproxyTests {
    static let haproxyPath = "/usr/sbin/haproxy"
    static let hasHaproxy = FileManager.default.isExecutableFile(atPath: haproxyPath)

    @Test(.enabled(if: hasHaproxy, "needs haproxy (apt-get install haproxy)"))
    func clientsThroughHaproxyAreSpreadOverBothInstances() async throws {
        try await withTwoServersBehindHaproxy { pair in
            try await pair.database.createUser("olga", password: "olga-password", roles: ["sales_rep"])
            var clients: [OrderlyConnection] = []
            for _ in 0..<6 { clients.append(try await pair.connectThroughHaproxy()) }
            let instances = clients.map { pair.instance(of: $0) }
            // leastconn sends each new connection to the instance holding fewer: 3 and 3 (a
            // closing connection haproxy still counts for a moment may tip one over).
            let counts = ["a": instances.filter { $0 == "a" }.count, "b": instances.filter { $0 == "b" }.count]
            #expect(counts["a"]! >= 2 && counts["b"]! >= 2 && counts["a"]! + counts["b"]! == 6, "\(instances)")
            for client in clients {
                #expect(try await client.authenticate(username: "olga", password: "olga-password").isSuccess)
                #expect(try await client.request("PING").final == "+PONG")
            }
            // Each instance's own counters (asked directly, as admin) agree: its sessions through
            // haproxy plus the admin's own.
            try await pair.database.createUser("root", password: "root-password", roles: ["admin"])
            for (name, port) in [("a", pair.a.port), ("b", pair.b.port)] {
                let admin = try await OrderlyConnection.connect(host: "127.0.0.1", port: port)
                #expect(try await admin.authenticate(username: "root", password: "root-password").isSuccess)
                let stats = try await admin.request("STATS")
                try #require(stats.isSuccess, "\(stats)")
                let open = try #require(stats.data[0].firstMatch(of: /"open":(\d+)/).flatMap { Int($0.1) })
                // Health checks come and go; they only ever add a short-lived connection.
                let expected = counts[name]! + 1
                #expect(open == expected || open == expected + 1, "instance \(name): \(stats.data[0])")
                await admin.close()
            }
            for client in clients { await client.close() }
        }
    }

    /// haproxy connects to the instances from 127.0.0.2, but with `send-proxy-v2` each instance
    /// sees the client's own address (127.0.0.1 here) in the PROXY header, for the login
    /// throttling and the audit log alike; haproxy's health checks are served as well.
    @Test(.enabled(if: hasHaproxy, "needs haproxy (apt-get install haproxy)"))
    func theInstancesSeeTheClientsAddressNotHaproxys() async throws {
        try await withTwoServersBehindHaproxy { pair in
            try await pair.database.createUser("olga", password: "olga-password", roles: ["sales_rep"])
            for _ in 0..<2 {
                let client = try await pair.connectThroughHaproxy()
                #expect(try await client.authenticate(username: "olga", password: "olga-password").isSuccess)
                await client.close()
            }
            let addresses = try await pair.database.execute(
                "SELECT DISTINCT after ->> 'client_addr' FROM orderly.audit_log WHERE action = 'user.login'").rows.map { $0.first ?? nil }
            #expect(addresses == ["127.0.0.1"], "\(addresses)")
            // Failed logins are counted against the client's address too.
            let client = try await pair.connectThroughHaproxy()
            #expect(try await client.authenticate(username: "olga", password: "wrong").errorCode == "AUTH_FAILED")
            await client.close()
            let failed = try await pair.database.execute("SELECT DISTINCT client_addr FROM orderly.auth_failures").rows.map { $0.first ?? nil }
            #expect(failed == ["127.0.0.1"], "\(failed)")
        }
    }

    @Test(.enabled(if: hasHaproxy, "needs haproxy (apt-get install haproxy)"))
    func eventsRaisedOnOneInstanceReachAUserConnectedToTheOther() async throws {
        try await withTwoServersBehindHaproxy { pair in
            let customer = try await ApprovalTests.prepare(pair.database)
            // Sue approves standard orders (sales supervisor); she is connected to B.
            let sue = try await pair.connectThroughHaproxy(to: "b", as: "sue", password: "sue-password", events: .stream)

            // A notice raised in SQL: no instance raised it, B's LISTEN connection pushes it.
            try await pair.database.execute("SELECT admin.notify('user:sue', 'dock 3 is closed')")
            let notice = try #require(await nextEvent(sue.events, within: 30))
            #expect(notice.hasPrefix("admin.notice ") && notice.contains("dock 3 is closed"), "\(notice)")

            // An order submitted by Rita on A asks for Sue's approval: the event reaches her on B.
            let rita = try await pair.connectThroughHaproxy(to: "a", as: "rita", password: "rita-password")
            let order = try await ApprovalTests.submit(rita, customer: customer, units: 5)
            let requested = try #require(await nextEvent(sue.events, within: 30))
            #expect(requested.hasPrefix("approval.requested ") && requested.contains("\"order\":\(order)"), "\(requested)")
            // And her decision on B reaches Rita on A.
            let ritaEvents = try await pair.connectThroughHaproxy(to: "a", as: "rita", password: "rita-password", events: .stream)
            #expect(try await sue.request("ORDER APPROVE \(order)").isSuccess)
            let approved = try #require(await nextEvent(ritaEvents.events, within: 30))
            #expect(approved.hasPrefix("approval.approved ") && approved.contains("\"order\":\(order)"), "\(approved)")
            for client in [sue, rita, ritaEvents] { await client.close() }
        }
    }

    @Test(.enabled(if: hasHaproxy, "needs haproxy (apt-get install haproxy)"))
    func whenOneInstanceStopsItsClientsReconnectToTheOtherAndCarryOn() async throws {
        try await withTwoServersBehindHaproxy { pair in
            let customer = try await ApprovalTests.prepare(pair.database)
            var clients: [OrderlyConnection] = []
            for instance in ["a", "a", "b", "b"] {
                clients.append(try await pair.connectThroughHaproxy(to: instance, as: "rita", password: "rita-password"))
            }
            let onA = Array(clients.prefix(2))

            // A client on A sends an order with an idempotency key; then A goes away.
            let create = #"ORDER CREATE customer=\#(customer) lines=[{"sku":"MILL-1-STD","qty":2}] idempotency_key=haproxy-failover-1"#
            let first = try await onA[0].request(create)
            try #require(first.isSuccess, "\(first)")
            let order = try #require(try doc(first.data[0])["id"].int)

            await pair.stop(pair.a)
            for client in onA {
                #expect(try await client.nextLine() == "#bye")
                #expect(try await client.nextLine() == nil, "A closed the session")
                await client.close()
            }

            // They reconnect through haproxy, as any client would, and land on B (a refused
            // connection to A is redispatched until the checks mark A down).
            for _ in onA {
                let again = try await pair.reconnectThroughHaproxy()
                #expect(pair.instance(of: again) == "b", "\(again.greeting)")
                #expect(try await again.authenticate(username: "rita", password: "rita-password").isSuccess)
                #expect(try await again.request("PING").final == "+PONG")
                // The retry with the same key gets the same order: nothing is created twice.
                let retried = try await again.request(create)
                try #require(retried.isSuccess, "\(retried)")
                #expect(try doc(retried.data[0])["id"].int == order)
                #expect(try doc(try await again.request("ORDER SHOW \(order)").data[0])["status"].text == "draft")
                await again.close()
            }
            let count = try await pair.database.execute("SELECT count(*) FROM orderly.orders")
            #expect(count.rows.first?.first == "1", "one order, however often it was sent")

            // B's own clients never noticed; new clients all go to B now.
            for client in clients where pair.instance(of: client) == "b" {
                #expect(try await client.request("PING").final == "+PONG")
            }
            for _ in 0..<3 {
                let fresh = try await pair.reconnectThroughHaproxy()
                #expect(pair.instance(of: fresh) == "b")
                await fresh.close()
            }
            for client in clients where pair.instance(of: client) == "b" { await client.close() }
        }
    }
}

/// Two servers ("a" and "b": their version in the greeting says which one a client reached) on
/// one test database, and haproxy on a free port in front of them.
struct HaproxyPair {
    /// Where haproxy connects to the instances from.
    static let proxyAddress = "127.0.0.2"
    let database: TestDatabase
    let a: OrderlyServer
    let b: OrderlyServer
    let haproxyPort: Int
    let servers: ShutdownOnce

    /// Shuts one instance down (its sessions get `#bye`).
    func stop(_ server: OrderlyServer) async { await servers.shutdown(server) }

    /// "a" or "b", from the greeting's `version=…+a`.
    func instance(of connection: OrderlyConnection) -> String? {
        connection.greeting.firstMatch(of: /version=\S*\+([ab])\b/).map { String($0.1) }
    }

    func connectThroughHaproxy(events: OrderlyConnection.EventDelivery = .inResponse) async throws -> OrderlyConnection {
        try await OrderlyConnection.connect(host: "127.0.0.1", port: haproxyPort, events: events, timeout: .seconds(20))
    }

    /// A connection through haproxy that reached `instance`, logged in: leastconn sends the
    /// next connection to the instance with fewer, so the ones that reach the other are kept
    /// open until one gets there.
    func connectThroughHaproxy(to instance: String, as user: String, password: String,
                               events: OrderlyConnection.EventDelivery = .inResponse) async throws -> OrderlyConnection {
        var elsewhere: [OrderlyConnection] = []
        var found: OrderlyConnection?
        for _ in 0..<10 where found == nil {
            let connection = try await connectThroughHaproxy(events: events)
            if self.instance(of: connection) == instance { found = connection } else { elsewhere.append(connection) }
        }
        for other in elsewhere { await other.close() }
        guard let found else { throw TestFailure("no connection through haproxy reached instance \(instance)") }
        let reply = try await found.authenticate(username: user, password: password)
        guard reply.isSuccess else { throw TestFailure("AUTH \(user) failed: \(reply.final)") }
        return found
    }

    /// Connects through haproxy like a client after a lost connection: tries again (for up to
    /// 30 s) while haproxy finds no live instance or closes at once.
    func reconnectThroughHaproxy() async throws -> OrderlyConnection {
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            do {
                return try await connectThroughHaproxy()
            } catch {
                if ContinuousClock.now > deadline { throw error }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }
}

/// Runs `body` with two servers on one fresh database behind a real haproxy; everything is
/// stopped afterwards (a server the body already shut down is not shut down twice).
func withTwoServersBehindHaproxy(_ body: (HaproxyPair) async throws -> Void) async throws {
    try await withTestDatabase { database in
        var logger = Logger(label: "orderlyd.test")
        logger.logLevel = .warning
        func start(_ name: String) async throws -> OrderlyServer {
            var configuration = ServerConfiguration(host: "127.0.0.1", port: 0, database: database.config, poolSize: 2)
            configuration.approvalReminderSeconds = 0
            configuration.version = OrderlyVersion.current + "+" + name
            configuration.trustedProxies = [AddressRange(HaproxyPair.proxyAddress)!]
            return try await OrderlyServer.start(configuration, logger: logger)
        }
        let a = try await start("a")
        let b: OrderlyServer
        do { b = try await start("b") } catch { await a.shutdown(); throw error }
        let stopped = ShutdownOnce()
        do {
            let haproxy = try await Haproxy.start(backends: [a.port, b.port])
            do {
                try await body(HaproxyPair(database: database, a: a, b: b, haproxyPort: haproxy.port, servers: stopped))
            } catch {
                await haproxy.stop()
                throw error
            }
            await haproxy.stop()
        } catch {
            for server in [a, b] { await stopped.shutdown(server) }
            throw error
        }
        for server in [a, b] { await stopped.shutdown(server) }
    }
}

/// Shuts each server down once, whether the test body did it already or not: `shutdown()` of a
/// stopped server is not meant to be called twice.
final class ShutdownOnce: Sendable {
    private let done = NIOLockedValueBox(Set<ObjectIdentifier>())

    func shutdown(_ server: OrderlyServer) async {
        let first = done.withLockedValue { $0.insert(ObjectIdentifier(server)).inserted }
        if first { await server.shutdown() }
    }
}

/// A real haproxy process with deploy/haproxy/orderly.cfg (its addresses from the environment),
/// checking the instances every 200 ms.
final class Haproxy: Sendable {
    let process: BackgroundProgram
    let port: Int

    static var configPath: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("deploy/haproxy/orderly.cfg").path
    }

    private init(process: BackgroundProgram, port: Int) {
        self.process = process
        self.port = port
    }

    /// Starts haproxy on a free port and waits until a client gets a greeting through it. A port
    /// taken in between (haproxy exits) is tried again with another one.
    static func start(backends: [Int]) async throws -> Haproxy {
        var failures: [String] = []
        for _ in 0..<3 {
            let port = try FreePort.find()
            let log = TemporaryFiles.path("haproxy-test", suffix: ".log")
            var environment: [String: String?] = [:]
            environment["ORDERLY_HAPROXY_BIND"] = "127.0.0.1:\(port)"
            environment["ORDERLY_BACKEND_A"] = "127.0.0.1:\(backends[0])"
            environment["ORDERLY_BACKEND_B"] = "127.0.0.1:\(backends[1])"
            environment["ORDERLY_CHECK_INTER"] = "200ms"
            // haproxy connects to the instances from its own address, which they trust for the
            // PROXY protocol; the tests' own direct connections come from 127.0.0.1.
            environment["ORDERLY_HAPROXY_SOURCE"] = HaproxyPair.proxyAddress
            // Few connections: haproxy refuses to start when the open-file limit is below ~2 × maxconn.
            environment["ORDERLY_HAPROXY_MAXCONN"] = "200"
            let process = try await BackgroundProgram(HaproxyTests.haproxyPath, ["-db", "-f", configPath], environment: environment, log: log)
            let haproxy = Haproxy(process: process, port: port)
            let deadline = ContinuousClock.now + .seconds(30)
            while process.isRunning && ContinuousClock.now < deadline {
                if let probe = try? await OrderlyConnection.connect(host: "127.0.0.1", port: port, timeout: .seconds(5)) {
                    await probe.close()
                    return haproxy
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            failures.append(haproxy.output)
            await haproxy.stop()
        }
        throw TestFailure("haproxy did not start: \(failures.joined(separator: "\n---\n"))")
    }

    var output: String { process.output }

    func stop() async {
        await process.stop()
        try? FileManager.default.removeItem(atPath: process.log)
    }
}
