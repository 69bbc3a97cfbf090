import LineFraming
import NIOCore
import NIOEmbedded
@testable import OrderlyServer
import Testing

/// The PING shortcut on the event loop, frame by frame: when it may answer and when it must
/// leave the PING to the session. (Over TCP, `ProtocolServerTests` shows the order of replies.)
@Suite struct RequestTrackerTests {
    private func channel(greeted: Bool = true) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(handler: RequestTracker(metrics: ServerMetrics()))
        if greeted { try channel.triggerUserOutboundEvent(RequestTracker.Answered()).wait() }
        return channel
    }

    private func send(_ line: String, to channel: EmbeddedChannel) throws {
        try channel.writeInbound(InboundFrame.line(channel.allocator.buffer(string: line)))
        channel.pipeline.fireChannelReadComplete()
    }

    /// What the handler wrote itself, and which lines it passed on to the session.
    private func drain(_ channel: EmbeddedChannel) throws -> (written: String, forwarded: [String]) {
        var written = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { written += String(buffer: buffer) }
        var forwarded: [String] = []
        while let frame = try channel.readInbound(as: InboundFrame.self) {
            if case .line(let line) = frame { forwarded.append(String(buffer: line)) }
        }
        return (written, forwarded)
    }

    @Test func aPingWithNothingInFlightIsAnsweredOnTheSpot() throws {
        let channel = try channel()
        try send("PING", to: channel)
        try send(" ping\t", to: channel)
        let result = try drain(channel)
        #expect(result.written == "+PONG\n+PONG\n" && result.forwarded.isEmpty)
    }

    @Test func aPingBehindAnotherRequestGoesToTheSessionUntilItIsAnswered() throws {
        let channel = try channel()
        try send("ORDER SHOW 1", to: channel)
        try send("PING", to: channel)
        var result = try drain(channel)
        #expect(result.written.isEmpty && result.forwarded == ["ORDER SHOW 1", "PING"])
        try channel.triggerUserOutboundEvent(RequestTracker.Answered()).wait()
        try send("PING", to: channel)
        result = try drain(channel)
        #expect(result.written.isEmpty && result.forwarded == ["PING"], "the first PING is still in flight")
        try channel.triggerUserOutboundEvent(RequestTracker.Answered()).wait()
        try channel.triggerUserOutboundEvent(RequestTracker.Answered()).wait()
        try send("PING", to: channel)
        result = try drain(channel)
        #expect(result.written == "+PONG\n" && result.forwarded.isEmpty)
    }

    @Test func nothingIsAnsweredBeforeTheGreeting() throws {
        // A connection the server turns away (full, shutting down) is never greeted.
        let channel = try channel(greeted: false)
        try send("PING", to: channel)
        let result = try drain(channel)
        #expect(result.written.isEmpty && result.forwarded == ["PING"])
    }

    @Test func aClientThatDoesNotTakeItsRepliesGetsNoShortcut() throws {
        let channel = try channel()
        channel.isWritable = false
        try send("PING", to: channel)
        let result = try drain(channel)
        #expect(result.written.isEmpty && result.forwarded == ["PING"], "left to the session and its back-pressure")
    }

    @Test func nothingIsAnsweredAfterTheServerSaidBye() throws {
        let channel = try channel()
        try channel.triggerUserOutboundEvent(RequestTracker.Closing()).wait()
        try send("PING", to: channel)
        let result = try drain(channel)
        #expect(result.written.isEmpty && result.forwarded == ["PING"])
    }

    @Test func aTableWithoutTheBuiltInPingIsLeftToTheSession() throws {
        let channel = EmbeddedChannel(handler: RequestTracker(metrics: ServerMetrics(), answersPing: false))
        try channel.triggerUserOutboundEvent(RequestTracker.Answered()).wait()
        try send("PING", to: channel)
        let result = try drain(channel)
        #expect(result.written.isEmpty && result.forwarded == ["PING"])
    }

    @Test func onlyABarePingIsTakenForOne() {
        for line in ["PING", "ping", "  PiNg ", "\tping"] {
            #expect(RequestTracker.isPing(ByteBufferAllocator().buffer(string: line)), "\(line)")
        }
        for line in ["PING x", "PINGS", "PIN", "", "P ING", "ping\u{0}", "HELP PING", "pinG!"] {
            #expect(!RequestTracker.isPing(ByteBufferAllocator().buffer(string: line)), "\(line)")
        }
    }
}
