import Logging
import NIOCore
import NIOHTTP1
import OrderlyStore

/// One HTTP/1.1 connection of the webhook listener. The only route is
/// `POST /carriers/<code>/events` with a JSON body and an `X-Orderly-Signature` header; the
/// database checks the signature and applies the event (`api.carrier_webhook`). Everything else
/// is answered here, before the database is asked: an unknown path (404), another method (405),
/// a body that is not JSON by its type (415) or too large (413), no signature (401), too many
/// requests from the address (429).
final class WebhookHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let signatureHeader = "X-Orderly-Signature"

    private let database: OrderlyDatabase
    private let limiter: RateLimiter
    private let maxBody: Int
    private let logger: Logger
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var tooLarge = false
    /// A request must arrive whole within this time of its head: a client that drips its body
    /// byte by byte (never idle long enough for the idle clock) is closed all the same.
    private let requestDeadline: TimeAmount
    private var deadline: Scheduled<Void>?

    init(database: OrderlyDatabase, limiter: RateLimiter, maxBody: Int, requestDeadline: TimeAmount, logger: Logger) {
        self.database = database
        self.limiter = limiter
        self.maxBody = maxBody
        self.requestDeadline = requestDeadline
        self.logger = logger
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            head = request
            let channel = context.channel
            deadline = context.eventLoop.scheduleTask(in: requestDeadline) { channel.close(promise: nil) }
            body = context.channel.allocator.buffer(capacity: 0)
            tooLarge = request.headers.first(name: "content-length").flatMap(Int.init).map { $0 > maxBody } ?? false
            // Announced too large: answered now (413, closing), not once a gigabyte has arrived
            // or the request's deadline has run out.
            if tooLarge {
                deadline?.cancel()
                deadline = nil
                head = nil
                body = nil
                respond(to: request, body: nil, context: context)
            }
        case .body(var chunk):
            guard !tooLarge else { return }
            if (body?.readableBytes ?? 0) + chunk.readableBytes > maxBody {
                tooLarge = true
                body = nil
            } else {
                body?.writeBuffer(&chunk)
            }
        case .end:
            deadline?.cancel()
            deadline = nil
            guard let request = head else { return }
            head = nil
            let received = body
            body = nil
            respond(to: request, body: received, context: context)
        }
    }

    /// Malformed HTTP (NIO's error handler has answered 400, Connection: close) or a failed
    /// socket: the connection ends now, as the answer says, not when the idle clock runs out.
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.debug("webhook connection closed", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // A client that stops sending (or never finishes its request) is closed.
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func respond(to request: HTTPRequestHead, body: ByteBuffer?, context: ChannelHandlerContext) {
        // Every request counts against its address's rate, wrong ones first of all (a client that
        // only sends 404s would otherwise keep its connections busy for free).
        let peer = context.channel.remoteAddress?.ipAddress ?? "unknown"
        if let wait = limiter.take(peer) {
            return write(429, #"{"error":"too many requests; slow down"}"#, request: request, context: context,
                         extra: [("Retry-After", String(wait))])
        }
        let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0].isEmpty, parts[1] == "carriers", parts[3] == "events",
              parts[2].range(of: "^[a-z][a-z0-9_]{1,31}$", options: .regularExpression) != nil else {
            return write(404, #"{"error":"not found; carriers post to /carriers/<code>/events"}"#, request: request, context: context)
        }
        guard request.method == .POST else {
            return write(405, #"{"error":"only POST"}"#, request: request, context: context, extra: [("Allow", "POST")])
        }
        if tooLarge {
            return write(413, "{\"error\":\"the body is larger than \(maxBody) bytes\"}", request: request, context: context, close: true)
        }
        let types = request.headers["content-type"]
        guard types.count == 1, types[0].lowercased().hasPrefix("application/json") else {
            return write(415, #"{"error":"the body must be application/json"}"#, request: request, context: context)
        }
        guard let signature = request.headers.first(name: Self.signatureHeader), !signature.isEmpty else {
            return write(401, #"{"error":"bad signature"}"#, request: request, context: context)
        }
        guard let bytes = body, let text = String(validating: bytes.readableBytesView, as: UTF8.self) else {
            return write(400, #"{"error":"the body is not UTF-8 text"}"#, request: request, context: context)
        }
        // PostgreSQL's text ends at a NUL byte: the signature would be checked, and the event
        // read, over the bytes before it only. JSON has no raw NUL (it writes \u0000).
        guard !bytes.readableBytesView.contains(0) else {
            return write(400, #"{"error":"the body holds a NUL byte"}"#, request: request, context: context, close: true)
        }
        let carrier = String(parts[2]), database = self.database
        let promise = context.eventLoop.makePromise(of: WebhookAnswer.self)
        promise.completeWithTask { await database.carrierWebhook(carrier: carrier, body: text, signature: signature) }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        promise.futureResult.whenSuccess { answer in
            let (handler, context) = loopBound.value
            if answer.status >= 500 {
                handler.logger.warning("webhook answered \(answer.status)", metadata: ["carrier": "\(carrier)", "body": "\(answer.body)"])
            }
            handler.write(answer.status, answer.body, request: request, context: context, fromDatabase: true)
        }
    }

    private func write(_ status: Int, _ json: String, request: HTTPRequestHead, context: ChannelHandlerContext,
                       extra: [(String, String)] = [], close: Bool = false, fromDatabase: Bool = false) {
        // A request refused before its signature was good (a wrong path, method or type, no or
        // a bad signature — the database answers 401 — too many) ends the connection: a stranger
        // cannot hold one of the webhook's connections. The database's answers to a signed
        // request (an unknown tracking number, an event from a skewed clock) keep it: a working
        // carrier gets those now and then.
        let refusedUnsigned = (400..<500).contains(status) && (!fromDatabase || status == 401)
        let keepAlive = request.isKeepAlive && !close && !refusedUnsigned
        var headers = HTTPHeaders([("Content-Type", "application/json"), ("Content-Length", String(json.utf8.count + 1))])
        headers.add(contentsOf: extra)
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        let head = HTTPResponseHead(version: request.version, status: HTTPResponseStatus(statusCode: status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: json + "\n")))), promise: nil)
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        if !keepAlive {
            let channel = context.channel
            done.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
