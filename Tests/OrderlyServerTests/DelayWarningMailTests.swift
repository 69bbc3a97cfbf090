import Foundation
import Logging
import OrderlyServer
import OrderlyTestSupport
import SMTPClient
import Testing

/// Two orderlyd instances on one database, each running the delay checks every second and each
/// sending the outbox to a real SMTP server (Debian's aiosmtpd, started here, storing what it
/// receives in a Maildir): every delay warning is raised once, and every customer e-mail
/// arrives once.
@Suite struct DelayWarningMailTests {
    /// aiosmtpd on a free port, delivering into a Maildir; stopped when body returns.
    static func withSMTPServer<T>(_ body: (_ port: Int, _ maildir: String) async throws -> T) async throws -> T {
        let port = try FreePort.find()
        let maildir = NSTemporaryDirectory() + "orderly-mail-\(UUID().uuidString)"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-m", "aiosmtpd", "-n", "-l", "127.0.0.1:\(port)", "-c", "aiosmtpd.handlers.Mailbox", maildir]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            // SIGKILL: aiosmtpd may not have its SIGTERM handler yet, and Foundation's
            // waitUntilExit spins until the child is gone.
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            try? FileManager.default.removeItem(atPath: maildir)
        }
        try await waitUntil("the SMTP server listens") {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            if !connected { try await Task.sleep(for: .milliseconds(100)) }
            return connected
        }
        return try await body(port, maildir)
    }

    /// The messages in the Maildir.
    static func messages(_ maildir: String) -> [String] {
        let folder = maildir + "/new"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.compactMap { try? String(contentsOfFile: folder + "/" + $0, encoding: .utf8) }
    }

    @Test func twoServersRaiseEachWarningOnceAndTheCustomerGetsEachMailOnce() async throws {
        try await Self.withSMTPServer { smtpPort, maildir in
            try await withTestServer(prepare: { database in
                for loader in ["admin.create_demo_users()", "admin.load_demo_catalog()", "admin.load_demo_approvals()", "admin.load_demo_customer()"] {
                    _ = try await database.execute("SELECT count(*) FROM \(loader)")
                }
            }, configure: { configuration in
                configuration.delayCheckSeconds = 1
                configuration.smtp = try? SMTPSettings(url: "smtp://127.0.0.1:\(smtpPort)?starttls=no", from: "orders@orderly.test")
                configuration.outbox.intervalSeconds = 1
            }) { server in
                // The second instance, on the same database, with the same timers.
                var logger = Logger(label: "orderlyd.test.second")
                logger.logLevel = .warning
                let second = try await OrderlyServer.start(server.server.configuration, logger: logger)
                do {
                    try await Self.check(server, maildir: maildir)
                } catch {
                    await second.shutdown()
                    throw error
                }
                await second.shutdown()
            }
        }
    }

    static func check(_ server: TestServer, maildir: String) async throws {

        let customerId = try #require(try await server.database.execute(
            "SELECT customer_id FROM orderly.users WHERE username = 'customer'").scalar)
        // A custom order wanted tomorrow: approval and production take longer (late_stage).
        let rep = try await server.connect(as: "sales_rep", password: "sales_rep-demo")
        let tomorrow = ISO8601DateFormatter.string(from: Date().addingTimeInterval(86_400), timeZone: .gmt,
                                                   formatOptions: [.withFullDate])
        let created = try await rep.request(#"""
            ORDER CREATE customer=\#(customerId) type=custom requested_date=\#(tomorrow) submit=true lines=[{"product":"CST-CASE","qty":1,"params":{"width_cm":10,"height_cm":20}}]
            """#)
        #expect(created.isSuccess, "\(created.final)")
        await rep.close()

        func count(_ sql: String) async throws -> Int { Int(try await server.database.execute(sql).scalar ?? "") ?? -1 }
        try await waitUntil("the delay e-mail is sent") {
            let sent = try await count("SELECT count(*) FROM orderly.outbox WHERE kind = 'order.delay' AND state = 'sent'")
            if sent == 0 { try await Task.sleep(for: .milliseconds(200)) }
            return sent > 0
        }
        // Several more ticks of both servers: nothing is raised or sent twice.
        try await Task.sleep(for: .seconds(3))
        #expect(try await count("SELECT count(*) FROM orderly.delay_warnings") == 1)
        #expect(try await count("SELECT count(*) FROM orderly.notifications WHERE kind = 'delay.warning'") == 3,
                "creator, the stage's owner role and customer_service, once each")
        let outbox = try await count("SELECT count(*) FROM orderly.outbox")
        #expect(try await count("SELECT count(*) FROM orderly.outbox WHERE state = 'sent'") == outbox)
        try await waitUntil("every message is in the Maildir") {
            let arrived = Self.messages(maildir).count
            if arrived < outbox { try await Task.sleep(for: .milliseconds(200)) }
            return arrived >= outbox
        }
        let mails = Self.messages(maildir)
        #expect(mails.count == outbox, "each e-mail arrived once")
        let ids = mails.compactMap { mail in
            mail.split(separator: "\n").first { $0.lowercased().hasPrefix("message-id:") }.map(String.init)
        }
        #expect(Set(ids).count == mails.count)
        let delay = try #require(mails.first { $0.contains("may be late") })
        #expect(delay.contains("To: <"))
    }

    /// A relay that is down: the attempt is counted, its error kept, and the message waits for
    /// its backoff instead of being lost or sent in a loop.
    @Test func aRelayThatIsDownIsRetriedLaterWithTheErrorKept() async throws {
        let deadPort = try FreePort.find()
        try await withTestServer(prepare: { database in
            _ = try await database.execute("SELECT count(*) FROM admin.load_demo_customer()")
            _ = try await database.execute("""
                INSERT INTO orderly.outbox (recipient, subject, body, kind, language, dedupe_key)
                VALUES ('someone@example.com', 'Hello', 'Body', 'test', 'en', 'test:1')
                """)
        }, configure: { configuration in
            configuration.smtp = try? SMTPSettings(url: "smtp://127.0.0.1:\(deadPort)?starttls=no", from: "orders@orderly.test")
            configuration.outbox.intervalSeconds = 1
            configuration.outbox.backoffSeconds = 3600
        }) { server in
            try await waitUntil("the first attempt failed") {
                try await server.database.execute("SELECT attempts FROM orderly.outbox WHERE dedupe_key = 'test:1'").scalar == "1"
            }
            try await Task.sleep(for: .seconds(2))
            let row = try await server.database.execute("""
                SELECT state, attempts, last_error IS NOT NULL, next_attempt_at > now() + interval '50 minutes'
                FROM orderly.outbox WHERE dedupe_key = 'test:1'
                """).rows.first
            #expect(row == ["pending", "1", "t", "t"], "\(String(describing: row))")
        }
    }
}
