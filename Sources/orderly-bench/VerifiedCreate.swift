import Foundation
import OrderlyClient

/// `create --verify`: every connection sends `ORDER CREATE … submit=true idempotency_key=…` and
/// records each `+OK` in the acknowledgement log. A request that met a lost connection (orderlyd
/// killed), `-UNAVAILABLE` or `-BUSY` is sent again, the very same line with the same key, over a
/// new connection if need be (backoff 50 ms doubling to 1 s), until it is answered or the run
/// ends: the server replays the first reply when the first attempt committed, so an order is
/// acknowledged exactly once whatever happened to its first reply.
///
/// Counters: `acknowledged`, `retries` (requests sent again), `in_doubt` (requests whose
/// connection broke after they were sent, or that got -IN_DOUBT or -UNAVAILABLE: they may have committed),
/// `replays` (in-doubt requests whose acknowledged order was created before the retry was sent,
/// so the reply was the stored one), `unresolved` (still unanswered when the run ended; they
/// may or may not exist, and are not in the log).
extension Runner {
    /// IN_DOUBT is retried too: with the same idempotency key, that is what it asks for.
    static let retryable: Set<String> = ["UNAVAILABLE", "BUSY", "IN_DOUBT"]

    private struct Pending {
        let key: String
        let line: String
        var inDoubt = false
        /// When the retry that got the answer was sent (wall clock, compared with the order's
        /// created_at which the database on this machine stamped).
        var sentAt = Date()
    }

    static func verifiedCreateLoop(
        index: Int, host: String, port: Int, login: (String, String), workload: Workload, log: AckLog,
        measureFrom: UInt64, measureUntil: UInt64
    ) async -> Tally {
        var tally = Tally()
        var rng = SystemRandomNumberGenerator()
        var sequence = 0
        var pending: Pending?
        var connection: OrderlyConnection?
        var backoff: UInt64 = 50_000_000

        func pause() async {
            try? await Task.sleep(nanoseconds: backoff)
            backoff = min(backoff * 2, 1_000_000_000)
        }

        while now() < measureUntil {
            if connection == nil {
                do {
                    let fresh = try await OrderlyConnection.connect(host: host, port: port, timeout: .seconds(10))
                    let auth = try await fresh.authenticate(username: login.0, password: login.1)
                    if !auth.isSuccess {
                        await fresh.close()
                        let code = auth.errorCode ?? "?"
                        guard retryable.contains(code) else {
                            tally.fail("AUTH:" + code)
                            break
                        }
                        await pause()
                        continue
                    }
                    connection = fresh
                } catch {
                    await pause()
                    continue
                }
            }
            guard let current = connection else { continue }

            if pending == nil {
                sequence += 1
                let key = "bench-\(workload.run)-\(index)-\(sequence)"
                pending = Pending(key: key, line: Workload.createLine(workload.data, key: key, submit: true, rng: &rng))
            } else {
                tally.counters["retries", default: 0] += 1
            }
            pending!.sentAt = Date()
            let started = now()
            let response: Response
            do {
                response = try await current.request(pending!.line)
            } catch {
                // The reply is lost: the order may or may not have been committed.
                if !pending!.inDoubt { tally.counters["in_doubt", default: 0] += 1 }
                pending!.inDoubt = true
                await current.close()
                connection = nil
                await pause()
                continue
            }
            if let code = response.errorCode {
                if retryable.contains(code) {
                    tally.counters["retried_" + code.lowercased(), default: 0] += 1
                    if (code == "IN_DOUBT" || code == "UNAVAILABLE") && !pending!.inDoubt {
                        // The database may have committed before the server lost it (IN_DOUBT
                        // says so; UNAVAILABLE should mean it never ran, but the check does
                        // not take the server's word for it).
                        tally.counters["in_doubt", default: 0] += 1
                        pending!.inDoubt = true
                    }
                    await pause()
                    continue
                }
                tally.fail(code)
                pending = nil
                continue
            }
            backoff = 50_000_000
            guard let order = response.data.first.flatMap(JSONValue.init(parsing:)),
                  case .number(let idText)? = order["id"], let id = Int64(idText),
                  case .number(let total)? = order["totals"]?["total"] else {
                tally.fail("BAD_REPLY")
                pending = nil
                continue
            }
            do {
                try await log.append(key: pending!.key, orderID: id, total: total)
            } catch {
                FileHandle.standardError.write(Data("orderly-bench: \(error)\n".utf8))
                tally.fail("LOG")
                break
            }
            tally.counters["acknowledged", default: 0] += 1
            if pending!.inDoubt, case .string(let created)? = order["created_at"],
               let createdAt = parseTime(created), createdAt < pending!.sentAt {
                tally.counters["replays", default: 0] += 1
            }
            if started >= measureFrom { tally.record("create", micros: (now() - started) / 1000) }
            pending = nil
        }
        if pending != nil { tally.counters["unresolved", default: 0] += 1 }
        await connection?.close()
        return tally
    }

    /// `2024-05-01T12:00:00.123456Z` (orderly.json_time).
    static func parseTime(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        // ISO8601DateFormatter takes at most milliseconds on some platforms: cut to those.
        guard let dot = text.firstIndex(of: "."), text.hasSuffix("Z") else { return nil }
        let fraction = text[text.index(after: dot)..<text.index(before: text.endIndex)]
        return formatter.date(from: String(text[..<dot]) + "." + fraction.prefix(3) + "Z")
    }
}

extension JSONValue {
    /// The member `key` of an object (the first, if repeated); nil for anything else.
    subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }
}
