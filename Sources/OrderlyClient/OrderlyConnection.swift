import LineFraming
import NIOCore
import NIOPosix
import NIOSSL
import OrderlyProtocol

/// A connection to an Orderly server, for the CLI, tests and other Swift clients. One task uses
/// it at a time: send a request, read its response.
public final class OrderlyConnection {
    /// Where pushed `>` event lines go.
    public enum EventDelivery: Sendable {
        /// Into `Response.events` of the response being read (and `nextLine` returns them).
        case inResponse
        /// Into `events`, as soon as they arrive, whether or not a response is being read.
        case stream
    }

    /// The longest line accepted from the server. Far above anything a real server sends (its
    /// data lines are single JSON rows), low enough that a broken server cannot exhaust memory.
    public static let maxLineBytes = 16 * 1024 * 1024

    private let channel: Channel
    private var lines: AsyncThrowingStream<String, Error>.AsyncIterator
    /// The `#orderly …` line the server greeted with.
    public private(set) var greeting = ""
    /// Pushed events (each `>` line without the `>`) when connected with `events: .stream`;
    /// finishes when the connection closes. Empty and finished with `.inResponse`.
    public let events: AsyncStream<String>

    /// Connects, over TLS when `tls` is given, and reads the greeting. Gives up with
    /// `ClientError.timedOut` when the connection or the greeting takes longer than `timeout`
    /// (e.g. a plain client at a TLS port: both sides would wait for the other forever).
    public static func connect(
        host: String, port: Int, tls: TLSOptions? = nil, events delivery: EventDelivery = .inResponse,
        timeout: TimeAmount = .seconds(10), group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> OrderlyConnection {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: String.self)
        let (events, eventContinuation) = AsyncStream.makeStream(of: String.self)
        if delivery == .inResponse { eventContinuation.finish() }
        let sslContext = try tls?.makeContext()
        let sniName = tls?.sniName(connectingTo: host)
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let sslContext {
                        try pipeline.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: sniName))
                    }
                    try pipeline.addHandler(ByteToMessageHandler(LineFrameDecoder(maxLineBytes: maxLineBytes)))
                    try pipeline.addHandler(LineCollector(
                        lines: continuation, events: delivery == .stream ? eventContinuation : nil, maxLineBytes: maxLineBytes))
                }
            }
            .connect(host: host, port: port).get()
        // Whatever the pipeline saw or missed, a closed channel ends both streams: a reader
        // waiting for a reply (or an event) must learn that the server is gone, never wait on.
        // (Finishing an already finished stream does nothing.)
        channel.closeFuture.whenComplete { _ in
            continuation.finish()
            eventContinuation.finish()
        }
        let connection = OrderlyConnection(channel: channel, lines: stream.makeAsyncIterator(), events: events)
        let deadline = channel.eventLoop.scheduleTask(in: timeout) {
            channel.pipeline.fireErrorCaught(ClientError.timedOut)
        }
        defer { deadline.cancel() }
        do {
            guard let greeting = try await connection.nextLine() else { throw ClientError.closed }
            connection.greeting = greeting
        } catch {
            await connection.close()
            throw error
        }
        return connection
    }

    private init(channel: Channel, lines: AsyncThrowingStream<String, Error>.AsyncIterator, events: AsyncStream<String>) {
        self.channel = channel
        self.lines = lines
        self.events = events
    }

    /// Sends one request line (a newline is added).
    public func send(_ line: String) async throws {
        try await sendRaw(Array((line + "\n").utf8))
    }

    /// Sends bytes exactly as given: for testing framing, partial lines and bad input.
    public func sendRaw(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes)).get()
    }

    /// The next line from the server without its newline; nil once the connection is closed.
    /// Throws if the connection failed (a TLS error, a line over `maxLineBytes`).
    public func nextLine() async throws -> String? {
        var iterator = lines
        defer { lines = iterator }
        return try await iterator.next()
    }

    /// Reads lines up to and including the next final `+`/`-` line.
    public func readResponse() async throws -> Response {
        var response = Response()
        while let line = try await nextLine() {
            switch line.first {
            case "*": response.data.append(String(line.dropFirst()))
            case ">": response.events.append(String(line.dropFirst()))
            case "+", "-":
                response.final = line
                return response
            default:
                // `#` info, and anything a newer server might add: not part of the reply's result.
                response.info.append(line.first == "#" ? String(line.dropFirst()) : line)
            }
        }
        throw ClientError.closed
    }

    /// Sends a request and reads its response.
    public func request(_ line: String) async throws -> Response {
        try await send(line)
        return try await readResponse()
    }

    /// Logs in; the username and password are sent as JSON strings, so any characters are fine.
    /// A `-BUSY` (the server is checking too many passwords at once, as after a restart when every
    /// client logs in again) is retried a few times after a growing pause: AUTH changes nothing,
    /// so a retry is always safe.
    public func authenticate(username: String, password: String, busyRetries: Int = 5) async throws -> Response {
        let line = "AUTH \(JSONText.quote(username)) \(JSONText.quote(password))"
        var response = try await request(line)
        var pause = Duration.milliseconds(200)
        for _ in 0..<busyRetries where response.errorCode == "BUSY" {
            try await Task.sleep(for: pause)
            pause *= 2
            response = try await request(line)
        }
        return response
    }

    public func close() async {
        try? await channel.close()
    }
}

/// Hands each decoded line to the connection's stream, or to the event stream for `>` lines
/// when events are delivered separately. Runs on the event loop and never blocks: both streams
/// buffer.
private final class LineCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = InboundFrame
    let lines: AsyncThrowingStream<String, Error>.Continuation
    let events: AsyncStream<String>.Continuation?
    let maxLineBytes: Int

    init(lines: AsyncThrowingStream<String, Error>.Continuation, events: AsyncStream<String>.Continuation?, maxLineBytes: Int) {
        self.lines = lines
        self.events = events
        self.maxLineBytes = maxLineBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // A broken or hostile server must not make the client grow without bound: a line over
        // the limit ends the connection with an error.
        guard case .line(var buffer) = unwrapInboundIn(data) else {
            return errorCaught(context: context, error: ClientError.lineTooLong(maxLineBytes))
        }
        // Invalid UTF-8 from the server is repaired (U+FFFD), never fatal.
        let line = buffer.readString(length: buffer.readableBytes) ?? ""
        if let events, line.first == ">" {
            events.yield(String(line.dropFirst()))
        } else {
            lines.yield(line)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        finish(error)
        context.close(promise: nil)
    }

    private func finish(_ error: Error?) {
        events?.finish()
        guard let error, !Self.isPlainClose(error) else { return lines.finish() }
        lines.finish(throwing: Self.describe(error))
    }

    /// Errors that only mean "the connection is gone" (a reset, a TCP close without TLS
    /// close_notify) end the stream like a close: `nextLine` returns nil, as it always has. Only
    /// whole lines are ever delivered, so a cut-off stream cannot produce a truncated reply.
    /// What the user must hear about (TLS, an over-long line, a timeout) is thrown.
    private static func isPlainClose(_ error: Error) -> Bool {
        switch error {
        case let error as NIOSSLError:
            if case .uncleanShutdown = error { return true }
            return false
        case is NIOSSLExtraError, is BoringSSLError, is ClientError:
            return false
        default:
            return true
        }
    }

    private static func describe(_ error: Error) -> Error {
        switch error {
        case let error as NIOSSLError:
            if case .handshakeFailed(let reason) = error {
                let text = "\(reason)"
                if text.contains("CERTIFICATE_VERIFY_FAILED") {
                    return ClientError.tls("the server's certificate is not trusted (CERTIFICATE_VERIFY_FAILED); "
                                           + "pass --tls-ca with the PEM file of the certificate or its CA")
                }
                // A plain-text server answering a TLS hello: the port is not a TLS listener.
                if text.contains("WRONG_VERSION_NUMBER") {
                    return ClientError.tls("the server did not answer in TLS (WRONG_VERSION_NUMBER): is this its plain port? "
                                           + "orderlyd listens for TLS on its --tls-listen port")
                }
                return ClientError.tls("handshake failed: \(text)")
            }
            return ClientError.tls("\(error)")
        case let error as NIOSSLExtraError:
            // NIOSSL names no host when it had none to check ("Couldn't find <none>").
            if error == .failedToValidateHostname {
                return ClientError.tls("the server's certificate is not valid for the name or address connected to; "
                                       + "pass --tls-server-name with a name the certificate was issued for")
            }
            return ClientError.tls("\(error)")
        case let error as BoringSSLError:
            return ClientError.tls("\(error)")
        default:
            return error
        }
    }
}
