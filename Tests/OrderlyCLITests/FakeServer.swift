import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOPosix
import NIOSSL

/// A tiny stand-in for orderlyd, optionally behind TLS, for what the real server cannot do yet
/// or should never do: TLS (the server's TLS listener is built elsewhere), pushing an event on
/// cue, and misbehaving (over-long and malformed lines).
///
/// It greets, answers `PING` with `+PONG`, `ROWS` with two data lines, `QUIT` with `+OK bye`
/// and a close, `DROP` with just a close, `HUGE` with a data line longer than the client accepts, `JUNK` with lines that
/// follow no rule before its final line; anything else gets `-UNKNOWN_COMMAND`.
final class FakeServer: Sendable {
    let port: Int
    private let channel: Channel
    private let clients: NIOLockedValueBox<[Channel]>

    static func start(tls: NIOSSLContext? = nil) async throws -> FakeServer {
        let clients = NIOLockedValueBox<[Channel]>([])
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    clients.withLockedValue { $0.append(child) }
                    if let tls { try child.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try child.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineBasedFrameDecoder()))
                    try child.pipeline.syncOperations.addHandler(FakeSession())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return FakeServer(port: channel.localAddress!.port!, channel: channel, clients: clients)
    }

    private init(port: Int, channel: Channel, clients: NIOLockedValueBox<[Channel]>) {
        self.port = port
        self.channel = channel
        self.clients = clients
    }

    /// Writes `line` (plus a newline) to every connected client: a pushed event.
    func push(_ line: String) {
        for client in clients.withLockedValue({ $0 }) {
            client.writeAndFlush(client.allocator.buffer(string: line + "\n"), promise: nil)
        }
    }

    func stop() async {
        for client in clients.withLockedValue({ $0 }) { try? await client.close() }
        try? await channel.close()
    }
}

private final class FakeSession: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelActive(context: ChannelHandlerContext) {
        send(context, ["#orderly proto=1 version=fake auth=required maxline=65536"])
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        let line = (buffer.readString(length: buffer.readableBytes) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        switch line.uppercased() {
        case "PING": send(context, ["+PONG"])
        case "ROWS": send(context, [#"*{"id":1,"name":"one"}"#, #"*{"id":2,"name":"two"}"#, "+OK 2 rows"])
        case "HUGE": send(context, ["*\"" + String(repeating: "a", count: 17 * 1024 * 1024) + "\"", "+OK 1 row"])
        case "JUNK": send(context, ["no prefix at all", "", "#info", "*not json", "+OK junk"])
        case "DROP": context.close(promise: nil)
        case "QUIT":
            send(context, ["+OK bye"])
            context.close(promise: nil)
        default: send(context, ["-UNKNOWN_COMMAND unknown command"])
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func send(_ context: ChannelHandlerContext, _ lines: [String]) {
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: lines.map { $0 + "\n" }.joined())), promise: nil)
    }
}

/// Runs `body` with a fake server that is stopped afterwards, whatever happens.
@discardableResult
func withFakeServer<T>(tls: NIOSSLContext? = nil, _ body: (FakeServer) async throws -> T) async throws -> T {
    let server = try await FakeServer.start(tls: tls)
    do {
        let result = try await body(server)
        await server.stop()
        return result
    } catch {
        await server.stop()
        throw error
    }
}
