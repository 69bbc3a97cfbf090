import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A TCP client that reads only when told to: for proving what the server does when a client
/// stops reading (back-pressure, slow consumers).
public final class RawClient: Sendable {
    public let channel: Channel
    private let sink: NIOLockedValueBox<Received>

    struct Received {
        var bytes: [UInt8] = []
        /// Lines starting with `+` or `-`: replies completed.
        var finalLines = 0
        var atLineStart = true
    }

    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let sink: NIOLockedValueBox<Received>
        init(sink: NIOLockedValueBox<Received>) { self.sink = sink }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            sink.withLockedValue { received in
                for byte in buffer.readableBytesView {
                    if received.atLineStart && (byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-")) { received.finalLines += 1 }
                    received.atLineStart = byte == UInt8(ascii: "\n")
                }
                received.bytes += buffer.readableBytesView
            }
        }
    }

    /// Connects with automatic reading off: nothing is read until `startReading()`.
    public static func connect(port: Int, reading: Bool = false) async throws -> RawClient {
        let sink = NIOLockedValueBox(Received())
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.autoRead, value: reading)
            .channelOption(.socketOption(.so_rcvbuf), value: 4096)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Collector(sink: sink)) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawClient(channel: channel, sink: sink)
    }

    private init(channel: Channel, sink: NIOLockedValueBox<Received>) {
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
    public var text: String { String(decoding: sink.withLockedValue { $0.bytes }, as: UTF8.self) }

    /// How many replies have been completed (lines starting with `+` or `-`).
    public var finalLineCount: Int { sink.withLockedValue { $0.finalLines } }

    public var isClosed: Bool { !channel.isActive }

    public func close() async { try? await channel.close() }
}
