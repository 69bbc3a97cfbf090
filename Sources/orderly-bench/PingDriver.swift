import Foundation
import Histogram
import NIOCore
import NIOPosix

/// The `ping` scenario, driven by channel handlers on event loops rather than by one task per
/// connection: a round trip costs the server a few microseconds, and a client that spends more
/// than that per PING measures itself, not the server.
struct PingDriver {
    let options: LoadOptions
    let depth: Int
    let credentials: [(String, String)]

    func run() async throws -> Tally {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        do {
            let tally = try await run(on: group)
            try await group.shutdownGracefully()
            return tally
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private func run(on group: MultiThreadedEventLoopGroup) async throws -> Tally {
        var handlers: [(PingHandler, EventLoop)] = []
        var ready: [EventLoopFuture<Void>] = []
        var tally = Tally()
        for index in 0..<options.connections {
            let login = credentials.isEmpty ? nil : credentials[index % credentials.count]
            do {
                let channel = try await ClientBootstrap(group: group)
                    .channelOption(.socketOption(.tcp_nodelay), value: 1)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            let handler = PingHandler(depth: depth, login: login, ready: channel.eventLoop.makePromise())
                            try channel.pipeline.syncOperations.addHandler(handler)
                        }
                    }
                    .connect(host: options.host, port: options.port).get()
                let handler = try await channel.pipeline.handler(type: PingHandler.self).get()
                handlers.append((handler, channel.eventLoop))
                ready.append(handler.ready)
            } catch {
                tally.fail("CONNECTION")
            }
        }
        // As in the other scenarios, the clock starts once every connection is greeted (and
        // logged in, with --user): a login is a deliberately slow password check.
        for future in ready { try? await future.get() }
        let start = Runner.now()
        let window = PingHandler.Window(from: start + UInt64(options.warmup * 1e9),
                                        until: start + UInt64((options.warmup + options.duration) * 1e9))
        for (handler, loop) in handlers { loop.execute { handler.begin(window) } }
        try await Task.sleep(nanoseconds: window.until - start)
        // Each handler stops sending at the window's end; give their last replies a moment.
        try await Task.sleep(for: .milliseconds(200))
        let finished = handlers.map { handler, loop in loop.submit { handler.finish() } }
        for result in finished { tally.merge(try await result.get()) }
        return tally
    }
}

/// One connection: reads the greeting, logs in if asked, says it is ready, then (once told the
/// window) keeps `depth` PINGs in flight until the window ends. Replies are counted per line; a reply is measured when its PING was sent
/// inside the window.
final class PingHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Window: Sendable {
        let from: UInt64
        let until: UInt64
    }

    private enum Phase { case greeting, authenticating, ready, pinging, done }

    private let depth: Int
    private let login: (String, String)?
    private var window = Window(from: .max, until: .max)
    private let readyPromise: EventLoopPromise<Void>
    /// Succeeds once greeted (and logged in); fails when the connection cannot be used.
    var ready: EventLoopFuture<Void> { readyPromise.futureResult }
    private var phase = Phase.greeting
    /// When each PING in flight was sent, oldest first.
    private var sentAt: CircularBuffer<UInt64>
    private var line: [UInt8] = []
    private var tally = Tally()
    private var histogram = Tally.newHistogram()
    private var measured = 0
    private var context: ChannelHandlerContext?
    private var readySettled = false
    private static let ping = Array("PING\n".utf8)

    init(depth: Int, login: (String, String)?, ready: EventLoopPromise<Void>) {
        self.depth = depth
        self.login = login
        self.readyPromise = ready
        self.sentAt = CircularBuffer(initialCapacity: depth)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        settleReady()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        while let byte = buffer.readInteger(as: UInt8.self) {
            if byte == UInt8(ascii: "\n") {
                answered(context: context)
                line.removeAll(keepingCapacity: true)
            } else if line.count < 256 {
                line.append(byte)
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if phase != .done && Runner.now() < window.until { tally.fail("CONNECTION") }
        phase = .done
        settleReady()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    /// Called on the event loop once every connection is ready: start pinging.
    func begin(_ window: Window) {
        guard phase == .ready, let context else { return }
        self.window = window
        phase = .pinging
        send(context: context, count: depth, at: Runner.now())
        context.flush()
    }

    /// Called on the event loop once the window is over: the connection's figures.
    func finish() -> Tally {
        if phase == .greeting || phase == .authenticating { tally.fail("NOT_READY") }
        phase = .done
        context?.close(promise: nil)
        if measured > 0 {
            tally.histograms["ping"] = histogram
            tally.requests += measured
        }
        return tally
    }

    private func answered(context: ChannelHandlerContext) {
        let kind = line.first
        switch phase {
        case .greeting:
            guard kind == UInt8(ascii: "#") else { return }
            if let (user, password) = login {
                phase = .authenticating
                context.write(wrapOutboundOut(context.channel.allocator.buffer(string: "AUTH \(user) \(password)\n")), promise: nil)
            } else {
                phase = .ready
                settleReady()
            }
        case .authenticating:
            if kind == UInt8(ascii: "+") {
                phase = .ready
                settleReady()
            } else if kind == UInt8(ascii: "-") {
                tally.fail("AUTH:" + String(decoding: line.dropFirst().prefix(while: { $0 != UInt8(ascii: " ") }), as: UTF8.self))
                phase = .done
                settleReady()
                context.close(promise: nil)
            }
        case .ready:
            return
        case .pinging:
            // Pushed events (`>`) and notices (`#`) are not replies.
            guard kind == UInt8(ascii: "+") || kind == UInt8(ascii: "-"), let sent = sentAt.popFirst() else { return }
            let now = Runner.now()
            if sent >= window.from && sent < window.until {
                measured += 1
                _ = histogram.record(max(1, (now - sent) / 1000))
                if kind == UInt8(ascii: "-") {
                    tally.fail(String(decoding: line.dropFirst().prefix(while: { $0 != UInt8(ascii: " ") }), as: UTF8.self))
                }
            }
            if now < window.until { send(context: context, count: 1, at: now) }
        case .done:
            return
        }
    }

    /// The connection is as ready as it will get (logged in, or failed): the run may start.
    private func settleReady() {
        guard !readySettled else { return }
        readySettled = true
        readyPromise.succeed()
    }

    private func send(context: ChannelHandlerContext, count: Int, at now: UInt64) {
        var buffer = context.channel.allocator.buffer(capacity: Self.ping.count * count)
        for _ in 0..<count {
            buffer.writeBytes(Self.ping)
            sentAt.append(now)
        }
        context.write(wrapOutboundOut(buffer), promise: nil)
    }
}
