import OrderlyProtocol

/// What the webhook answers a carrier: an HTTP status and a JSON body.
public struct WebhookAnswer: Sendable, Equatable {
    public let status: Int
    public let body: String

    public init(status: Int, body: String) {
        self.status = status
        self.body = body
    }
}

extension OrderlyDatabase {
    /// Hands a carrier's tracking event to `api.carrier_webhook`, which checks the signature
    /// and applies it; the answer comes from the database (a value it cannot store, such as a
    /// NUL character, is its 400 too). A database that cannot answer is 503 (the carrier retries
    /// later); anything unexpected is 500 and goes to the log.
    public func carrierWebhook(carrier: String, body: String, signature: String) async -> WebhookAnswer {
        do {
            let result = try await run(changes: true) {
                try $0.query("SELECT (r ->> 'status'), (r -> 'body')::text FROM api.carrier_webhook($1, $2, $3) AS r",
                             [carrier, body, signature])
            }
            guard let row = result.rows.first, row.count == 2, let status = row[0].flatMap({ Int($0) }), let json = row[1] else {
                return WebhookAnswer(status: 500, body: #"{"error":"internal error"}"#)
            }
            return WebhookAnswer(status: status, body: JSONText.compact(json))
        } catch let error as ProtocolError {
            switch error.code {
            case .busy, .unavailable, .inDoubt:
                return WebhookAnswer(status: 503, body: "{\"error\":\(JSONText.quote(error.message))}")
            default:
                return WebhookAnswer(status: 500, body: #"{"error":"internal error"}"#)
            }
        } catch {
            return WebhookAnswer(status: 500, body: #"{"error":"internal error"}"#)
        }
    }
}
