import LineFraming
import NIOCore
import OrderlyProtocol

/// Counts the requests of one connection that the session has not answered yet, on the event
/// loop, between the line framing and the session:
/// - while any is in flight the idle clock is stopped (`IdleTimeoutHandler.Working` … `Idle`; a
///   request queued behind a slow one is not idleness either);
/// - a `PING` that arrives when none is in flight is answered right here. It needs nothing the
///   session has, and a round trip through the session's task costs more than the PING itself;
///   with nothing in flight the `+PONG` cannot overtake another reply. A client that is not
///   reading its replies gets no such shortcut: its PINGs queue behind the session's back-pressure.
///
/// The session counts as one request in flight from the start until its greeting is written, so
/// a connection that is refused (server full or shutting down) is never answered here, and
/// nothing is once the server has said `#bye` (`Closing`).
/// The session sends `Answered` after writing each reply (the greeting included).
final class RequestTracker: ChannelDuplexHandler {
    typealias InboundIn = InboundFrame
    typealias InboundOut = InboundFrame
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Sent by the session once a reply (or the greeting) has been written to the channel.
    struct Answered: Sendable {}
    /// Sent before the server's `#bye`: nothing is answered here after it.
    struct Closing: Sendable {}

    private let metrics: ServerMetrics
    /// False when the command table has no built-in PING (a table of its own, in tests).
    private let answersPing: Bool
    private var inFlight = 1
    private var closing = false
    private var mustFlush = false
    private static let pong = Reply.success("PONG")

    init(metrics: ServerMetrics, answersPing: Bool = true) {
        self.metrics = metrics
        self.answersPing = answersPing
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if answersPing, inFlight == 0, !closing, context.channel.isWritable, case .line(let line) = frame, Self.isPing(line) {
            context.write(wrapOutboundOut(context.channel.allocator.buffer(string: Self.pong)), promise: nil)
            mustFlush = true
            metrics.record(command: "PING", error: nil, microseconds: 0)
            return
        }
        if inFlight == 0 { context.triggerUserOutboundEvent(IdleTimeoutHandler.Working(), promise: nil) }
        inFlight += 1
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if mustFlush {
            mustFlush = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        if event is Closing {
            closing = true
            promise?.succeed()
            return
        }
        guard event is Answered else { return context.triggerUserOutboundEvent(event, promise: promise) }
        inFlight = max(0, inFlight - 1)
        if inFlight == 0 { context.triggerUserOutboundEvent(IdleTimeoutHandler.Idle(), promise: nil) }
        promise?.succeed()
    }

    /// `PING` in any case, with nothing else on the line but blanks.
    static func isPing(_ line: ByteBuffer) -> Bool {
        var bytes = line.readableBytesView[...]
        while let first = bytes.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { bytes = bytes.dropFirst() }
        while let last = bytes.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { bytes = bytes.dropLast() }
        guard bytes.count == 4 else { return false }
        return zip(bytes, "ping".utf8).allSatisfy { $0 | 0x20 == $1 }
    }
}
