import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A TCP client that reads only when told to: for proving what the server does when a client
/// stops reading (back-pressure, slow consumers).
public final class RawClient: Sendable {
    public let channel: Channel
    private let sink: NIOLockedValueBox<[UInt8]>

    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let sink: NIOLockedValueBox<[UInt8]>
        init(sink: NIOLockedValueBox<[UInt8]>) { self.sink = sink }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            sink.withLockedValue { $0 += buffer.readableBytesView }
        }
    }

    /// Connects with automatic reading off: nothing is read until `startReading()`.
    public static func connect(port: Int, reading: Bool = false) async throws -> RawClient {
        let sink = NIOLockedValueBox<[UInt8]>([])
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.autoRead, value: reading)
            .channelOption(.socketOption(.so_rcvbuf), value: 4096)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Collector(sink: sink)) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawClient(channel: channel, sink: sink)
    }

    private init(channel: Channel, sink: NIOLockedValueBox<[UInt8]>) {
        self.channel = channel
        self.sink = sink
    }

    /// Writes `bytes`; the future completes only when the kernel has taken them all.
    public func write(_ bytes: [UInt8]) -> EventLoopFuture<Void> {
        channel.writeAndFlush(channel.allocator.buffer(bytes: bytes))
    }

    public func startReading() {
        channel.setOption(.autoRead, value: true).whenSuccess { [channel] in channel.read() }
    }

    /// Everything received so far.
    public var text: String { String(decoding: sink.withLockedValue { $0 }, as: UTF8.self) }

    public var isClosed: Bool { !channel.isActive }

    public func close() async { try? await channel.close() }
}
