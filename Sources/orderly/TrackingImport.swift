import Foundation
import OrderlyClient

/// `orderly tracking import FILE.csv`: one `TRACKING EVENT` per record, the header naming the
/// arguments (carrier, event_id, shipment or tracking_no, code, at, location, lat, lon, eta,
/// signed_by, note); an empty cell leaves its argument out. The server checks every line as it
/// checks any command. Lines are pipelined (a window of requests in flight), with a progress bar
/// on a terminal, then a summary; exit status 1 when a line was rejected.
struct TrackingImport {
    let connection: OrderlyConnection
    let path: String
    /// Requests in flight at once: enough to hide the round trip, within the server's
    /// --max-in-flight (32 by default).
    var window = 16

    struct Summary: Equatable {
        var applied = 0
        /// Stored, but older than the shipment's latest event.
        var older = 0
        /// Orderly had the event already (received before this import began): nothing changed.
        var replays = 0
        var rejected: [(line: Int, reason: String)] = []

        static func == (a: Summary, b: Summary) -> Bool {
            a.applied == b.applied && a.older == b.older && a.replays == b.replays
                && a.rejected.map(\.line) == b.rejected.map(\.line) && a.rejected.map(\.reason) == b.rejected.map(\.reason)
        }
    }

    func run(progress: Bool) async throws -> Summary {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ImportFailure(description: "cannot read \(path): \(error.localizedDescription)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ImportFailure(description: "\(path) is not UTF-8 text")
        }
        let records = try CSVReader.records(text)
        guard let header = records.first else { throw ImportFailure(description: "\(path) is empty: the first line names the columns") }
        let columns = header.fields.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        if let bad = columns.first(where: { $0.range(of: "^[a-z][a-z0-9_]*$", options: .regularExpression) == nil }) {
            throw ImportFailure(description: "line 1: \"\(bad)\" is not a column name (the header names TRACKING EVENT's arguments)")
        }
        // "Received before this import began", by the server's clock (WHOAMI's server_time),
        // whatever ours says.
        let whoami = try await connection.request("WHOAMI")
        guard let line = whoami.data.first, case .object(let session)? = JSONValue(parsing: line),
              case .string(let now)? = session.first(where: { $0.key == "server_time" })?.value,
              let started = Self.parseTime(now) else {
            throw ImportFailure(description: "the server did not say its time (WHOAMI): \(whoami.final)")
        }
        let rows = Array(records.dropFirst())
        var summary = Summary()
        var pending: [Int] = []  // line numbers of requests in flight, in order
        var next = 0, done = 0
        var seen = Set<String>()   // event_id and received_at of the replies counted
        let bar = progress ? ProgressBar(total: rows.count) : nil
        while done < rows.count {
            while next < rows.count && pending.count < window {
                let row = rows[next]
                next += 1
                guard row.fields.count == columns.count else {
                    summary.rejected.append((row.line, "\(row.fields.count) fields, but the header has \(columns.count)"))
                    done += 1
                    continue
                }
                var words = ["TRACKING", "EVENT"]
                for (name, value) in zip(columns, row.fields) where !value.isEmpty {
                    words.append("\(name)=\(value)")
                }
                try await connection.send(RequestLine.join(words))
                pending.append(row.line)
            }
            guard !pending.isEmpty else { continue }
            let line = pending.removeFirst()
            let response = try await connection.readResponse()
            done += 1
            if response.isSuccess, let reply = response.data.first.flatMap({ JSONValue(parsing: $0) }),
               case .object(let members) = reply {
                let member = { (key: String) in members.first { $0.key == key }?.value }
                // A replay: received before this import began, or earlier in it (the same event
                // twice in the file gets the first one's reply, received_at and all).
                let receivedAt: String? = if case .string(let text)? = member("received_at") { text } else { nil }
                let eventID: String? = if case .string(let text)? = member("event_id") { text } else { nil }
                let seenKey = "\(eventID ?? "")\u{0}\(receivedAt ?? "")"
                if let text = receivedAt, let received = Self.parseTime(text), received < started {
                    summary.replays += 1
                } else if receivedAt != nil && !seen.insert(seenKey).inserted {
                    summary.replays += 1
                } else if member("applied") == .bool(false) {
                    summary.older += 1
                } else {
                    summary.applied += 1
                }
            } else {
                summary.rejected.append((line, response.isSuccess ? "no reply" : String(response.final.dropFirst())))
            }
            bar?.show(done: done, summary: summary)
        }
        bar?.finish()
        summary.rejected.sort { $0.line < $1.line }
        return summary
    }

    static func parseTime(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text.replacingOccurrences(of: #"(\.\d{3})\d+"#, with: "$1", options: .regularExpression))
            ?? ISO8601DateFormatter().date(from: text)
    }

    static func report(_ summary: Summary, path: String) -> String {
        var text = "\(path): \(summary.applied) applied, \(summary.older) stored as older, \(summary.replays) replays, \(summary.rejected.count) rejected\n"
        for (line, reason) in summary.rejected {
            text += "  line \(line): \(reason)\n"
        }
        return text
    }
}

struct ImportFailure: Error, CustomStringConvertible {
    let description: String
}

/// `[#####     ] 120/1000` on standard error, redrawn in place, at most every tenth of a second.
final class ProgressBar {
    private let total: Int
    private var last = Date.distantPast

    init(total: Int) { self.total = total }

    func show(done: Int, summary: TrackingImport.Summary) {
        guard Date().timeIntervalSince(last) >= 0.1 || done == total else { return }
        last = Date()
        let width = 30, filled = total == 0 ? width : width * done / total
        StandardStreams.err("\r[\(String(repeating: "#", count: filled))\(String(repeating: " ", count: width - filled))] \(done)/\(total)"
                            + " applied \(summary.applied + summary.older), replays \(summary.replays), rejected \(summary.rejected.count)")
    }

    func finish() { StandardStreams.err("\n") }
}
