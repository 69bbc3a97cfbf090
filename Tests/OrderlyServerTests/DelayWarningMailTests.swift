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
    /// A real SMTP server (scripts/test-smtp-server.py, on Debian's aiosmtpd) on a port the
    /// kernel picks, storing each message it receives as a file in a folder of its own; with
    /// `tls` (certificate, key, user, password) it requires STARTTLS and then AUTH. Stopped when
    /// body returns.
    static func withSMTPServer<T>(tls: [String] = [], _ body: (_ port: Int, _ maildir: String) async throws -> T) async throws -> T {
        let maildir = TemporaryFiles.path("orderly-mail")
        try FileManager.default.createDirectory(atPath: maildir, withIntermediateDirectories: true)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/test-smtp-server.py").path
        let server = try await BackgroundProgram("/usr/bin/python3", [script, maildir] + tls, log: maildir + ".log")
        do {
            var port: Int?
            try await waitUntil("the SMTP server listens") {
                port = (try? String(contentsOfFile: maildir + "/port", encoding: .utf8)).flatMap { Int($0) }
                if port == nil { try await Task.sleep(for: .milliseconds(100)) }
                return port != nil
            }
            guard let port else { throw TestFailure("the SMTP server said no port: \(server.output)") }
            let result = try await body(port, maildir)
            await stop(server, maildir)
            return result
        } catch {
            await stop(server, maildir)
            throw error
        }
    }

    private static func stop(_ server: BackgroundProgram, _ maildir: String) async {
        server.signal(SIGKILL)
        await server.stop()
        try? FileManager.default.removeItem(atPath: maildir)
        try? FileManager.default.removeItem(atPath: maildir + ".log")
    }

    /// The messages received so far.
    static func messages(_ maildir: String) -> [String] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: maildir)) ?? []).filter { $0.hasSuffix(".eml") }
        return names.compactMap { try? String(contentsOfFile: maildir + "/" + $0, encoding: .utf8) }
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
            mail.split(whereSeparator: \.isNewline).first { $0.lowercased().hasPrefix("message-id:") }.map(String.init)
        }
        #expect(Set(ids).count == mails.count)
        let delay = try #require(mails.first { $0.contains("may be late") })
        #expect(delay.contains("To: <"))
    }

    /// A relay that does not answer: the attempt is counted, its error kept, and the message waits for
    /// its backoff instead of being lost or sent in a loop.
    @Test func aRelayThatIsDownIsRetriedLaterWithTheErrorKept() async throws {
        // A relay that accepts connections and never answers (listening, never accepting): the
        // exchange times out. Listening, so no other test's listener can share the port.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 && listen(fd, 8) == 0
            }
        }
        try #require(bound)
        let deadPort = Int(UInt16(bigEndian: address.sin_port))
        try await withTestServer(prepare: { database in
            _ = try await database.execute("SELECT count(*) FROM admin.load_demo_customer()")
            _ = try await database.execute("""
                INSERT INTO orderly.outbox (recipient, subject, body, kind, language, dedupe_key)
                VALUES ('someone@example.com', 'Hello', 'Body', 'test', 'en', 'test:1')
                """)
        }, configure: { configuration in
            configuration.smtp = try? SMTPSettings(url: "smtp://127.0.0.1:\(deadPort)?starttls=no", from: "orders@orderly.test")
            configuration.smtp?.timeoutSeconds = 2
            configuration.outbox.intervalSeconds = 1
            configuration.outbox.backoffSeconds = 3600
        }) { server in
            try await waitUntil("the first attempt failed") {
                try await server.database.execute("SELECT attempts || state FROM orderly.outbox WHERE dedupe_key = 'test:1'").scalar == "1pending"
            }
            try await Task.sleep(for: .seconds(1))
            let row = try await server.database.execute("""
                SELECT state, attempts, last_error IS NOT NULL, next_attempt_at > now() + interval '50 minutes'
                FROM orderly.outbox WHERE dedupe_key = 'test:1'
                """).rows.first
            #expect(row == ["pending", "1", "t", "t"], "\(String(describing: row))")
        }
    }

    /// A relay as in production: STARTTLS required and AUTH required after it (aiosmtpd with a
    /// certificate and an authenticator). The right password delivers over TLS; a wrong one is
    /// an attempt that failed with the relay's answer kept.
    @Test func aRelayWithSTARTTLSAndAUTH() async throws {
        let folder = TemporaryFiles.path("orderly-smtp-tls")
        let (cert, key) = try await TLSTests.makeCertificate(in: folder)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // One message in the outbox, and a server sending it with these credentials.
        func sending(_ subject: String, as password: String, port: Int, _ body: (TestServer) async throws -> Void) async throws {
            try await withTestServer(prepare: { database in
                _ = try await database.execute("""
                    INSERT INTO orderly.outbox (recipient, subject, body, kind, language, dedupe_key)
                    VALUES ('someone@example.com', $1, 'Körper', 'test', 'en', 'test:1')
                    """, [subject])
            }, configure: { configuration in
                configuration.smtp = try? SMTPSettings(url: "smtp://relay:\(password)@localhost:\(port)", from: "orders@orderly.test")
                configuration.smtp?.caFile = cert
                configuration.outbox.intervalSeconds = 1
            }, body)
        }
        try await Self.withSMTPServer(tls: [cert, key, "relay", "s3cret"]) { port, maildir in
            try await sending("Grüße", as: "s3cret", port: port) { server in
                try await waitUntil("the message is sent") {
                    try await server.database.execute("SELECT state FROM orderly.outbox WHERE dedupe_key = 'test:1'").scalar == "sent"
                }
                let mails = Self.messages(maildir)
                #expect(mails.count == 1)
                #expect(mails.first?.hasPrefix("X-Authenticated: True") == true, "\(mails)")
                #expect(mails.first?.contains("Subject: =?UTF-8?B?") == true, "a subject beyond ASCII is an encoded word")
            }
            try await sending("Hello", as: "wrong", port: port) { server in
                try await waitUntil("the attempt failed") {
                    try await server.database.execute("SELECT attempts || state FROM orderly.outbox WHERE dedupe_key = 'test:1'").scalar == "1pending"
                }
                let error = try await server.database.execute("SELECT last_error FROM orderly.outbox WHERE dedupe_key = 'test:1'").scalar
                #expect(error?.contains("AUTH: 535") == true, "\(String(describing: error))")
            }
        }
    }
}
