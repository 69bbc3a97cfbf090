import NIOCore
import NIOExtras
import NIOPosix
import OrderlyProtocol

public enum ClientError: Error, CustomStringConvertible {
    case closed
    public var description: String { "the server closed the connection" }
}

/// A connection to an Orderly server, for the CLI, tests and other Swift clients. One task uses
/// it at a time: send a request, read its response.
public final class OrderlyConnection {
    private let channel: Channel
    private var lines: AsyncStream<String>.AsyncIterator
    /// The `#orderly …` line the server greeted with.
    public private(set) var greeting = ""

    public static func connect(host: String, port: Int, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> OrderlyConnection {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self)
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineBasedFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(LineCollector(continuation: continuation))
                }
            }
            .connect(host: host, port: port).get()
        let connection = OrderlyConnection(channel: channel, lines: stream.makeAsyncIterator())
        guard let greeting = try await connection.nextLine() else { throw ClientError.closed }
        connection.greeting = greeting
        return connection
    }

    private init(channel: Channel, lines: AsyncStream<String>.AsyncIterator) {
        self.channel = channel
        self.lines = lines
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
    public func nextLine() async throws -> String? {
        var iterator = lines
        defer { lines = iterator }
        return await iterator.next()
    }

    /// Reads lines up to and including the next final `+`/`-` line.
    public func readResponse() async throws -> Response {
        var response = Response()
        while let line = try await nextLine() {
            switch line.first {
            case "*": response.data.append(String(line.dropFirst()))
            case ">": response.events.append(String(line.dropFirst()))
            case "#": response.info.append(String(line.dropFirst()))
            default:
                response.final = line
                return response
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
    public func authenticate(username: String, password: String) async throws -> Response {
        try await request("AUTH \(JSONText.quote(username)) \(JSONText.quote(password))")
    }

    public func close() async {
        try? await channel.close()
    }
}

/// Hands each decoded line to the connection's stream.
private final class LineCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let continuation: AsyncStream<String>.Continuation

    init(continuation: AsyncStream<String>.Continuation) { self.continuation = continuation }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        var line = buffer.readString(length: buffer.readableBytes) ?? ""
        if line.hasSuffix("\r") { line.removeLast() }
        continuation.yield(line)
    }

    func channelInactive(context: ChannelHandlerContext) {
        continuation.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        continuation.finish()
        context.close(promise: nil)
    }
}
