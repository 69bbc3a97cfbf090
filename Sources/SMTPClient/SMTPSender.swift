import Foundation
import NIOCore
import NIOExtras
import NIOPosix
import NIOSSL

/// One e-mail to send.
public struct SMTPMessage: Sendable, Equatable {
    public let to: String
    public let subject: String
    /// Plain text; sent base64-encoded, so that no line length or leading dot matters.
    public let body: String
    /// A stable Message-ID (the outbox row's), so that a receiver can recognise a message sent
    /// twice after a crash between sending and recording it.
    public let messageID: String

    public init(to: String, subject: String, body: String, messageID: String) {
        self.to = to
        self.subject = subject
        self.body = body
        self.messageID = messageID
    }
}

public struct SMTPFailure: Error, CustomStringConvertible {
    public let description: String
}

/// Sends one message per connection over SMTP (RFC 5321): EHLO, STARTTLS when offered or
/// required, AUTH PLAIN when credentials are set, MAIL FROM, RCPT TO, DATA, QUIT. The whole
/// exchange is bounded by `settings.timeoutSeconds`: a relay that stops answering closes the
/// connection rather than holding the sender.
public struct SMTPSender: Sendable {
    public let settings: SMTPSettings
    /// Made once (it reads the trust store or `caFile`), for every message.
    private let tls: NIOSSLContext

    /// Throws when the TLS set-up cannot be made (an unreadable `caFile`): at start-up, not at
    /// the first message.
    public init(settings: SMTPSettings) throws {
        self.settings = settings
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let caFile = settings.caFile { configuration.trustRoots = .file(caFile) }
        tls = try NIOSSLContext(configuration: configuration)
    }

    public func send(_ message: SMTPMessage, group: EventLoopGroup) async throws {
        let settings = self.settings, tls = self.tls
        let host = settings.host
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(.seconds(Int64(settings.timeoutSeconds)))
            .connect(host: host, port: settings.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if settings.security == .implicitTLS {
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: host))
                    }
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineBasedFrameDecoder()))
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let deadline = channel.channel.eventLoop.scheduleTask(in: .seconds(Int64(settings.timeoutSeconds))) {
            channel.channel.close(promise: nil)
        }
        defer { deadline.cancel() }
        try await channel.executeThenClose { inbound, outbound in
            var lines = inbound.makeAsyncIterator()
            // A reply: lines "250-…" until "250 …"; its code and text.
            func reply() async throws -> (code: Int, text: [String]) {
                var text: [String] = []
                while true {
                    guard var buffer = try await lines.next() else {
                        throw SMTPFailure(description: "the SMTP server closed the connection")
                    }
                    let line = buffer.readString(length: buffer.readableBytes) ?? ""
                    guard line.count >= 3, let code = Int(line.prefix(3)) else {
                        throw SMTPFailure(description: "the SMTP server said something that is not a reply: \(line.prefix(100))")
                    }
                    text.append(String(line.dropFirst(4)))
                    if line.count == 3 || line[line.index(line.startIndex, offsetBy: 3)] == " " { return (code, text) }
                }
            }
            func expect(_ accepted: ClosedRange<Int>, after command: String) async throws -> [String] {
                let (code, text) = try await reply()
                guard accepted.contains(code) else {
                    throw SMTPFailure(description: "\(command): \(code) \(text.joined(separator: " "))")
                }
                return text
            }
            func say(_ line: String) async throws {
                try await outbound.write(ByteBuffer(string: line + "\r\n"))
            }

            _ = try await expect(220...220, after: "greeting")
            try await say("EHLO \(settings.heloName)")
            var extensions = try await expect(250...250, after: "EHLO").map { $0.uppercased() }
            let offersTLS = extensions.contains { $0.hasPrefix("STARTTLS") }
            if settings.security == .startTLSRequired || (settings.security == .startTLSIfOffered && offersTLS) {
                guard offersTLS else { throw SMTPFailure(description: "the SMTP server does not offer STARTTLS, which is required") }
                try await say("STARTTLS")
                _ = try await expect(220...220, after: "STARTTLS")
                // Made and added on the channel's own loop: a handler is not Sendable.
                let raw = channel.channel
                try await raw.eventLoop.submit {
                    try raw.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: host),
                                                               position: .first)
                }.get()
                try await say("EHLO \(settings.heloName)")
                extensions = try await expect(250...250, after: "EHLO").map { $0.uppercased() }
            }
            if let username = settings.username {
                let token = Data(([0] + Array(username.utf8) + [0] + Array((settings.password ?? "").utf8))).base64EncodedString()
                try await say("AUTH PLAIN \(token)")
                _ = try await expect(235...235, after: "AUTH")
            }
            try await say("MAIL FROM:<\(settings.from)>")
            _ = try await expect(250...250, after: "MAIL FROM")
            try await say("RCPT TO:<\(message.to)>")
            _ = try await expect(250...251, after: "RCPT TO")
            try await say("DATA")
            _ = try await expect(354...354, after: "DATA")
            try await outbound.write(ByteBuffer(string: MessageText.render(message, from: settings.from, date: Date())))
            _ = try await expect(250...250, after: "end of DATA")
            try await say("QUIT")
            _ = try? await reply()
        }
    }
}

/// The message as it goes after DATA: headers, a base64 body, and the final ".".
enum MessageText {
    static func render(_ message: SMTPMessage, from: String, date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        let body = Data(message.body.utf8).base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed])
        return [
            "From: <\(from)>",
            "To: <\(message.to)>",
            "Subject: \(encodedHeader(message.subject))",
            "Date: \(formatter.string(from: date))",
            "Message-ID: <\(message.messageID)>",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: base64",
            "",
            body,
            ".",
            "",
        ].joined(separator: "\r\n")
    }

    /// A header value: as it is when printable ASCII, else an RFC 2047 encoded word.
    static func encodedHeader(_ text: String) -> String {
        if text.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value < 0x7F }) { return text }
        return "=?UTF-8?B?\(Data(text.utf8).base64EncodedString())?="
    }
}
