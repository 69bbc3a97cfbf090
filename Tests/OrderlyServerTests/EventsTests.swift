import Foundation
import OrderlyClient
import OrderlyTestSupport
import PostgresClient
import Testing

@Suite struct EventsTests {
    @Test func anOnlineUserGetsAPushUnasked() async throws {
        try await withTestServer { server in
            try await server.database.createUser("olive", password: "olive-password", roles: ["sales_rep"])
            let client = try await server.connect(as: "olive", password: "olive-password")
            try await server.database.execute("SELECT admin.notify('user:olive', 'your order 42 was approved')")
            // The client asks for nothing: the line can only be a push. Its latency is make
            // bench's to measure (a timed assertion failed on a busy machine at 1.2 s); the bound
            // here only turns an event that never comes into a failure rather than a hang.
            let committed = ContinuousClock.now
            let line = try #require(try await client.nextLine())
            #expect(ContinuousClock.now - committed < .seconds(30))
            #expect(line.hasPrefix(">admin.notice {"))
            let object = try JSONSerialization.jsonObject(with: Data(line.dropFirst(">admin.notice ".count).utf8)) as? [String: Any]
            #expect((object?["payload"] as? [String: Any])?["message"] as? String == "your order 42 was approved")
            #expect(object?["read"] as? Bool == false)
            // The pushed object is the INBOX row.
            let inbox = try await client.request("INBOX")
            #expect(inbox.data.count == 1)
            #expect(inbox.data[0] == String(line.dropFirst(">admin.notice ".count)))
            await client.close()
        }
    }

    @Test func anOfflineUserFindsItInTheInboxAndAcknowledgesIt() async throws {
        try await withTestServer { server in
            try await server.database.createUser("otto", password: "otto-password", roles: ["warehouse"])
            try await server.database.execute("SELECT admin.notify('user:otto', 'first')")
            try await server.database.execute("SELECT admin.notify('user:otto', 'second')")
            let client = try await server.connect(as: "otto", password: "otto-password")
            let inbox = try await client.request("INBOX unread=true")
            try #require(inbox.data.count == 2)
            #expect(inbox.data[0].contains("second"), "newest first")
            let id = try #require(inbox.data[1].firstMatch(of: /"id": ?(\d+)/)?.1)
            let ack = try await client.request("INBOX ACK \(id)")
            #expect(ack.data.count == 1 && ack.data[0].replacingOccurrences(of: " ", with: "") == #"{"acknowledged":1}"#)
            #expect(try await client.request("INBOX unread=true").data.count == 1)
            #expect(try await client.request("INBOX ACK all").isSuccess)
            #expect(try await client.request("INBOX unread=true").data.isEmpty)
            #expect(try await client.request("INBOX").data.count == 2)
            #expect(try await client.request("INBOX ACK 999999").errorCode == "NOT_FOUND")
            #expect(try await client.request("INBOX limit=0").errorCode == "INVALID")
            await client.close()
        }
    }

    @Test func aRoleNotificationReachesEveryOnlineMemberAndNobodyElse() async throws {
        try await withTestServer { server in
            try await server.database.createUser("w1", password: "w1-password", roles: ["warehouse"])
            try await server.database.createUser("w2", password: "w2-password", roles: ["warehouse"])
            try await server.database.createUser("s1", password: "s1-password", roles: ["sales_rep"])
            let first = try await server.connect(as: "w1", password: "w1-password")
            let second = try await server.connect(as: "w2", password: "w2-password")
            let outsider = try await server.connect(as: "s1", password: "s1-password")
            try await server.database.execute("SELECT admin.notify('role:warehouse', 'dock 3 is closed')")
            #expect(try await first.nextLine()?.contains("dock 3 is closed") == true)
            #expect(try await second.nextLine()?.contains("dock 3 is closed") == true)
            // The outsider's next line is the reply to its own request, not the event.
            #expect(try await outsider.request("PING").final == "+PONG")
            #expect(try await outsider.request("INBOX").data.isEmpty)
            for client in [first, second, outsider] { await client.close() }
        }
    }

    /// A notice to a role an admin made for customers' logins ("buyers"): staff holding it get
    /// it pushed; a customer's login reads it in INBOX as customers see it ("from":"staff", not
    /// the admin's database login), and is not pushed the staff's document.
    @Test func aCustomersLoginReadsANoticeToItsOtherRoleAsACustomer() async throws {
        try await withTestServer { server in
            try await server.database.execute("SELECT admin.create_role('buyers', 'the buying team')")
            try await server.database.createUser("cora", password: "cora-password", roles: ["customer", "buyers"])
            try await server.database.createUser("stan", password: "stan-password", roles: ["buyers"])
            let cora = try await server.connect(as: "cora", password: "cora-password")
            let stan = try await server.connect(as: "stan", password: "stan-password")
            try await server.database.execute("SELECT admin.notify('role:buyers', 'new price list')")
            #expect(try await stan.nextLine()?.contains("new price list") == true)
            // cora's next line is the reply to its own request, not the event.
            let inbox = try await cora.request("INBOX")
            #expect(inbox.data.count == 1 && inbox.data[0].contains(#""from":"staff""#), "\(inbox.data)")
            #expect(inbox.events.isEmpty, "not pushed the staff's document: \(inbox.events)")
            for client in [cora, stan] { await client.close() }
        }
    }

    /// A pushed event is the inbox read live: a session whose roles no longer grant inbox.read is
    /// pushed nothing (it was pushed its role's events after INBOX had become FORBIDDEN).
    @Test func aSessionWithoutInboxReadIsPushedNothing() async throws {
        try await withTestServer { server in
            try await server.database.createUser("wanda", password: "wanda-password", roles: ["warehouse"])
            try await server.database.createUser("walt", password: "walt-password", roles: ["warehouse", "sales_rep"])
            let wanda = try await server.connect(as: "wanda", password: "wanda-password")
            let walt = try await server.connect(as: "walt", password: "walt-password")
            try await server.database.execute("SELECT admin.revoke_permission('warehouse', 'inbox.read')")
            let without = try await wanda.request("WHOAMI")
            #expect(without.isSuccess && !without.data[0].contains("inbox.read"), "\(without)")
            #expect(try await wanda.request("INBOX").errorCode == "FORBIDDEN")

            try await server.database.execute("SELECT admin.notify('role:warehouse', 'first')")
            // walt still reads his inbox (sales_rep): he is pushed it. A notice to him after it is
            // the barrier: events are pushed one after another, so once he has it, "first" has
            // been pushed to every session it was going to reach.
            #expect(try await walt.nextLine()?.contains("first") == true)
            try await server.database.execute("SELECT admin.notify('user:walt', 'barrier')")
            #expect(try await walt.nextLine()?.contains("barrier") == true)

            try await server.database.execute("SELECT admin.grant_permission('warehouse', 'inbox.read')")
            let with = try await wanda.request("WHOAMI")
            #expect(with.isSuccess && with.data[0].contains("inbox.read") && with.events.isEmpty, "\(with)")
            try await server.database.execute("SELECT admin.notify('role:warehouse', 'second')")
            let next = try #require(try await wanda.nextLine())
            #expect(next.contains("second"), "the first event wanda is pushed is the one after inbox.read came back: \(next)")
            for client in [wanda, walt] { await client.close() }
        }
    }

    @Test func pushesNeverSplitAReply() async throws {
        try await withTestServer { server in
            try await server.database.createUser("busy", password: "busy-password", roles: ["warehouse"])
            let client = try await server.connect(as: "busy", password: "busy-password")
            async let notices: Void = {
                for i in 0..<50 { try await server.database.execute("SELECT admin.notify('user:busy', $1)", ["notice \(i)"]) }
            }()
            let expected = try await client.request("HELP")
            #expect(expected.data.count > 5)
            var events = expected.events.count
            for _ in 0..<300 {
                let response = try await client.request("HELP")
                // Every reply is whole: its data lines, then its final line; events only around it.
                #expect(response.data == expected.data && response.final == "+OK \(expected.data.count) commands")
                events += response.events.count
            }
            try await notices
            while events < 50, let line = try await client.nextLine() {
                #expect(line.hasPrefix(">admin.notice "))
                events += 1
            }
            #expect(events == 50)
            await client.close()
        }
    }

    @Test func nothingIsLostWhileTheListenConnectionIsDown() async throws {
        try await withTestServer { server in
            try await server.database.createUser("lena", password: "lena-password", roles: ["warehouse"])
            let client = try await server.connect(as: "lena", password: "lena-password")
            // Cut the LISTEN connection, and notify while it is reconnecting.
            let killed = try await server.database.execute("""
                SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                WHERE datname = current_database() AND application_name = 'orderlyd-listen'
                """).scalar
            #expect(killed == "1")
            for i in 0..<5 { try await server.database.execute("SELECT admin.notify('user:lena', $1)", ["while down \(i)"]) }
            var received: [String] = []
            while received.count < 5, let line = try await client.nextLine() { received.append(line) }
            #expect(received.count == 5)
            #expect((0..<5).allSatisfy { i in received.contains { $0.contains("while down \(i)") } })
            await client.close()
        }
    }

    /// Notifications commit out of id order (nothing serialises the writers): the listener must
    /// deliver a late lower id once, also across a reconnect, and never an id that rolled back.
    @Test func notificationsCommittedOutOfIdOrderArriveOnceEach() async throws {
        try await withTestServer { server in
            try await server.database.createUser("ooo", password: "ooo-password", roles: ["warehouse"])
            let client = try await server.connect(as: "ooo", password: "ooo-password")
            let config = server.database.config
            var received: [String] = []
            func collect(until expected: Set<String>) async throws {
                // One round trip at least: the events pushed before its reply come with it.
                let deadline = ContinuousClock.now + .seconds(60)
                repeat {
                    let reply = try await client.request("PING")
                    received += reply.events.compactMap { $0.firstMatch(of: /"message": ?"([^"]+)"/).map { String($0.1) } }
                    if expected.isSubset(of: Set(received)) { return }
                    try await Task.sleep(for: .milliseconds(50))
                } while ContinuousClock.now < deadline
            }
            func cutTheListenConnection() async throws {
                let killed = try await server.database.execute("""
                    SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                    WHERE datname = current_database() AND application_name = 'orderlyd-listen'
                    """).scalar
                #expect(killed == "1")
            }

            // A takes an id and stays open; B takes the next one and commits, and is delivered
            // (without waiting for A: a global lock would make B time out here).
            let first = try Connection(config: config)
            let second = try Connection(config: config)
            defer { first.close(); second.close() }
            try first.executeScript("BEGIN")
            let firstID = try first.query("SELECT admin.notify('user:ooo', 'taken-first')").scalar
            try second.executeScript("SET statement_timeout = '10s'; BEGIN")
            let secondID = try second.query("SELECT admin.notify('user:ooo', 'taken-second')").scalar
            try second.executeScript("COMMIT")
            #expect(Int64(secondID ?? "") ?? 0 > Int64(firstID ?? "") ?? .max)
            try await collect(until: ["taken-second"])
            #expect(received == ["taken-second"])
            // The lower id commits after the listener has passed it, and after it reconnected.
            try await cutTheListenConnection()
            try first.executeScript("COMMIT")
            try await collect(until: ["taken-first"])
            #expect(received == ["taken-second", "taken-first"])

            // Under load: six writers, each notification held open a few random milliseconds, one
            // in eight rolled back; the LISTEN connection is cut once on the way.
            let committed = try await withThrowingTaskGroup(of: [String].self) { group in
                for writer in 0..<6 {
                    group.addTask {
                        try await onThread {
                            let connection = try Connection(config: config)
                            defer { connection.close() }
                            var mine: [String] = []
                            for i in 0..<40 {
                                let text = "w\(writer)-\(i)"
                                try connection.executeScript("BEGIN")
                                _ = try connection.query("SELECT admin.notify('user:ooo', $1)", [text])
                                usleep(UInt32.random(in: 0...15_000))
                                if i % 8 == 5 {
                                    try connection.executeScript("ROLLBACK")
                                } else {
                                    try connection.executeScript("COMMIT")
                                    mine.append(text)
                                }
                            }
                            return mine
                        }
                    }
                }
                try await Task.sleep(for: .milliseconds(150))
                try await cutTheListenConnection()
                var all: [String] = []
                for try await mine in group { all += mine }
                return all
            }
            #expect(committed.count == 6 * 35)
            try await collect(until: Set(committed))
            // Anything delivered twice would have come with the same pass: one more round trip.
            try await Task.sleep(for: .milliseconds(300))
            try await collect(until: [])
            let loadEvents = Array(received.dropFirst(2))
            #expect(Set(committed).subtracting(loadEvents).sorted() == [], "every committed notification")
            #expect(Set(loadEvents).subtracting(committed).sorted() == [], "none that rolled back")
            #expect(loadEvents.count == committed.count, "each once")
            await client.close()
        }
    }
}
