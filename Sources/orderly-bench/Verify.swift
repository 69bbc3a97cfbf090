import ArgumentParser
import Foundation
import NIOPosix
import OrderlyProtocol
import PostgresClient

/// `verify`: after `create --verify FILE` (and whatever crashed meanwhile), checks the database
/// against the acknowledged orders and its own invariants. Exits 1 with a report on any violation.
struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a database after `create --verify FILE`: acknowledged orders, totals, stock, audit.",
        discussion: """
            Checks: every acknowledged order (a line key<TAB>order_id<TAB>total of FILE) is \\
            there exactly once — its idempotency key of --user holds a reply with that order id, \\
            the order exists with that total and is submitted, no key or order is acknowledged \\
            twice, and no order of --user in the acknowledged id range lacks an idempotency key \\
            (a retry that created a second order); every order's totals equal the sums of its \\
            lines (subtotal = Σ gross, discount = Σ discount, tax = Σ tax, total = Σ net + tax); \\
            no SKU's stock is negative or over-reserved and stock_reserved equals the unreleased \\
            stock_reservations; every row of order_status_history has its audit row \\
            ('order.status' with the order's id and the new status; the first 'draft' row \\
            'order.draft').
            """)

    @Option(name: .customLong("database-url"), help: "PostgreSQL URL of the database (a superuser, or a login that may read schema orderly).")
    var databaseURL: String
    @Option(help: "The file `create --verify` wrote.") var file: String
    @Option(help: "The user the orders were created as (idempotency keys are per user).") var user = "sales_rep"
    @Option(help: "Violations shown per check.") var show = 10
    @Flag(help: "Print the result as one JSON object.") var json = false

    struct Acknowledged {
        var key: String
        var orderID: Int64
        var total: String
    }

    static func parse(_ text: String) throws -> [Acknowledged] {
        var result: [Acknowledged] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 3, !fields[0].isEmpty, let id = Int64(fields[1]),
                  fields[2].wholeMatch(of: /-?[0-9]+(\.[0-9]+)?/) != nil else {
                throw ValidationError("line \(number + 1) is not key<TAB>order_id<TAB>total: \(line.prefix(200))")
            }
            result.append(Acknowledged(key: String(fields[0]), orderID: id, total: String(fields[2])))
        }
        return result
    }

    /// One row per violation: (check, detail). Every value is a parameter: $1 the acknowledged
    /// orders as a JSON array of [key, order_id, total], $2 the username.
    static let violationsSQL = """
        WITH f AS (
            SELECT e ->> 0 AS key, (e ->> 1)::bigint AS order_id, (e ->> 2)::numeric AS total
            FROM jsonb_array_elements($1::jsonb) e
        ), u AS (
            SELECT u.id FROM orderly.users u WHERE lower(u.username) = lower($2)
        ), k AS (
            SELECT f.*, ik.key IS NOT NULL AS has_key, ik.reply,
                   CASE WHEN ik.reply IS NOT NULL THEN (ik.reply::jsonb ->> 'id')::bigint END AS reply_id
            FROM f LEFT JOIN orderly.idempotency_keys ik ON ik.key = f.key AND ik.user_id = (SELECT id FROM u)
        ), replies AS MATERIALIZED (
            SELECT ik.key, ik.command, (ik.reply::jsonb ->> 'id')::bigint AS order_id
            FROM orderly.idempotency_keys ik WHERE ik.user_id = (SELECT id FROM u) AND ik.reply IS NOT NULL
        ), lines AS (
            SELECT l.order_id, sum(l.gross) AS gross, sum(l.discount) AS discount, sum(l.tax) AS tax,
                   sum(l.net + l.tax) AS total
            FROM orderly.order_lines l GROUP BY l.order_id
        ), reserved AS (
            SELECT r.sku_id, sum(r.qty) AS qty FROM orderly.stock_reservations r
            WHERE r.released_at IS NULL GROUP BY r.sku_id
        ), history AS (
            SELECT h.order_id::text AS entity_id, h.to_status,
                   CASE WHEN h.from_status IS NULL THEN 'order.draft' ELSE 'order.status' END AS action, count(*) AS n
            FROM orderly.order_status_history h GROUP BY 1, 2, 3
        ), audited AS (
            SELECT a.entity_id, a.action,
                   CASE WHEN a.action = 'order.draft' THEN 'draft' ELSE a.after ->> 'status' END AS to_status, count(*) AS n
            FROM orderly.audit_log a
            WHERE a.entity = 'order' AND a.action IN ('order.status', 'order.draft') GROUP BY 1, 2, 3
        )
        SELECT 'user unknown', format('no user %s: its idempotency keys cannot be found', $2)
        WHERE NOT EXISTS (SELECT 1 FROM u)
        UNION ALL
        SELECT 'acknowledged twice', format('key %s acknowledged %s times', f.key, count(*))
        FROM f GROUP BY f.key HAVING count(*) > 1
        UNION ALL
        SELECT 'one order for several keys', format('order %s acknowledged for %s keys: %s', f.order_id,
                                                    count(DISTINCT f.key), string_agg(DISTINCT f.key, ', '))
        FROM f GROUP BY f.order_id HAVING count(DISTINCT f.key) > 1
        UNION ALL
        SELECT 'acknowledged order lost', format('key %s (order %s): no idempotency key', k.key, k.order_id)
        FROM k WHERE NOT k.has_key
        UNION ALL
        SELECT 'acknowledged order lost', format('key %s (order %s): the key has no reply', k.key, k.order_id)
        FROM k WHERE k.has_key AND k.reply IS NULL
        UNION ALL
        SELECT 'acknowledged order differs', format('key %s: acknowledged order %s, the key''s reply says order %s',
                                                    k.key, k.order_id, k.reply_id)
        FROM k WHERE k.reply IS NOT NULL AND k.reply_id IS DISTINCT FROM k.order_id
        UNION ALL
        SELECT 'acknowledged order lost', format('key %s: order %s does not exist', k.key, k.order_id)
        FROM k WHERE NOT EXISTS (SELECT 1 FROM orderly.orders o WHERE o.id = k.order_id)
        UNION ALL
        SELECT 'acknowledged order differs', format('key %s: order %s has total %s, acknowledged %s', k.key, o.id, o.total, k.total)
        FROM k JOIN orderly.orders o ON o.id = k.order_id WHERE o.total <> k.total
        UNION ALL
        SELECT 'acknowledged order differs', format('key %s: order %s was acknowledged submitted but is %s', k.key, o.id, o.status)
        FROM k JOIN orderly.orders o ON o.id = k.order_id WHERE o.status = 'draft'
        UNION ALL
        SELECT 'order without idempotency key', format('order %s (created %s by %s) is in the acknowledged id range but no key''s reply names it',
                                                       o.id, o.created_at, $2)
        FROM orderly.orders o
        WHERE o.created_by = (SELECT id FROM u)
          AND o.id BETWEEN (SELECT min(order_id) FROM f) AND (SELECT max(order_id) FROM f)
          AND NOT EXISTS (SELECT 1 FROM replies r WHERE r.order_id = o.id)
        UNION ALL
        SELECT 'order key replayed to two orders', format('order %s is the reply of %s keys', x.id, x.n)
        FROM (SELECT r.order_id AS id, count(*) AS n FROM replies r WHERE r.command = 'ORDER CREATE'
              GROUP BY 1 HAVING count(*) > 1) x
        UNION ALL
        SELECT 'total differs from lines',
               format('order %s: subtotal %s / Σ gross %s, discount %s / Σ discount %s, tax %s / Σ tax %s, total %s / Σ net+tax %s',
                      o.id, o.subtotal, coalesce(l.gross, 0), o.discount_total, coalesce(l.discount, 0),
                      o.tax_total, coalesce(l.tax, 0), o.total, coalesce(l.total, 0))
        FROM orderly.orders o LEFT JOIN lines l ON l.order_id = o.id
        WHERE o.subtotal <> coalesce(l.gross, 0) OR o.discount_total <> coalesce(l.discount, 0)
           OR o.tax_total <> coalesce(l.tax, 0) OR o.total <> coalesce(l.total, 0)
        UNION ALL
        SELECT 'stock', format('SKU %s: on hand %s, reserved %s, unreleased reservations %s',
                               s.code, s.stock_on_hand, s.stock_reserved, coalesce(r.qty, 0))
        FROM orderly.skus s LEFT JOIN reserved r ON r.sku_id = s.id
        WHERE s.stock_on_hand < 0 OR s.stock_reserved < 0 OR s.stock_reserved > s.stock_on_hand
           OR s.stock_reserved <> coalesce(r.qty, 0)
        UNION ALL
        SELECT 'stock', format('reservations of unknown SKU %s: %s', r.sku_id, r.qty)
        FROM reserved r WHERE NOT EXISTS (SELECT 1 FROM orderly.skus s WHERE s.id = r.sku_id)
        UNION ALL
        SELECT 'line without its pricing', format('order %s line %s: no stored pricing %s', l.order_id, l.line_no,
                                                  encode(l.pricing, 'hex'))
        FROM orderly.order_lines l
        WHERE NOT EXISTS (SELECT 1 FROM orderly.line_pricings p WHERE p.digest = l.pricing)
        UNION ALL
        SELECT 'status change without audit row',
               format('order %s: %s change(s) to %s, %s audit row(s) %s', h.entity_id, h.n, h.to_status,
                      coalesce(a.n, 0), h.action)
        FROM history h LEFT JOIN audited a USING (entity_id, action, to_status)
        WHERE coalesce(a.n, 0) < h.n
        """

    /// What was looked at, for the summary.
    static let countsSQL = """
        SELECT (SELECT count(*) FROM orderly.orders), (SELECT count(*) FROM orderly.order_lines),
               (SELECT count(*) FROM orderly.skus), (SELECT count(*) FROM orderly.order_status_history)
        """

    struct Outcome {
        var acknowledged: Int
        var counts: [String]
        /// check → (count, first details)
        var violations: [(check: String, count: Int, details: [String])]
    }

    static func check(url: String, acknowledged: [Acknowledged], user: String, show: Int) throws -> Outcome {
        let db = try Connection(config: ConnectionConfig(url: url, applicationName: "orderly-bench verify"))
        defer { db.close() }
        let array = "[" + acknowledged.map { "[\(JSONText.quote($0.key)),\($0.orderID),\($0.total)]" }.joined(separator: ",") + "]"
        // One snapshot for every check.
        try db.executeScript("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        defer { try? db.executeScript("ROLLBACK") }
        let rows = try db.queryOnce(violationsSQL, [array, user]).rows
        let counts = try db.queryOnce(countsSQL).rows.first?.map { $0 ?? "?" } ?? []
        var violations: [(check: String, count: Int, details: [String])] = []
        for row in rows {
            let check = row[0] ?? "?", detail = row[1] ?? ""
            if let index = violations.firstIndex(where: { $0.check == check }) {
                violations[index].count += 1
                if violations[index].details.count < show { violations[index].details.append(detail) }
            } else {
                violations.append((check, 1, show > 0 ? [detail] : []))
            }
        }
        return Outcome(acknowledged: acknowledged.count, counts: counts, violations: violations)
    }

    func run() async throws {
        let text: String
        do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
            throw ValidationError("cannot read \(file): \(error.localizedDescription)")
        }
        let acknowledged = try Self.parse(text)
        let (url, user, show) = (databaseURL, user, show)
        let outcome = try await NIOThreadPool.singleton.runIfActive {
            try Self.check(url: url, acknowledged: acknowledged, user: user, show: show)
        }
        let total = outcome.violations.reduce(0) { $0 + $1.count }
        if json {
            let object: [String: Any] = [
                "acknowledged": outcome.acknowledged, "violations": total,
                "checked": ["orders": outcome.counts[safe: 0] ?? "?", "order_lines": outcome.counts[safe: 1] ?? "?",
                            "skus": outcome.counts[safe: 2] ?? "?", "status_changes": outcome.counts[safe: 3] ?? "?"],
                "by_check": Dictionary(outcome.violations.map { ($0.check, ["count": $0.count, "examples": $0.details] as [String: Any]) },
                                       uniquingKeysWith: { a, _ in a }),
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            let c = outcome.counts
            print("verify: \(outcome.acknowledged) acknowledged orders; checked \(c[safe: 0] ?? "?") orders, "
                  + "\(c[safe: 1] ?? "?") lines, \(c[safe: 2] ?? "?") SKUs, \(c[safe: 3] ?? "?") status changes")
            if total == 0 {
                print("verify: OK, no violations")
            } else {
                print("verify: FAILED, \(total) violation(s)")
                for violation in outcome.violations {
                    print("  \(violation.check): \(violation.count)")
                    for detail in violation.details { print("    \(detail)") }
                }
            }
        }
        if total > 0 { throw ExitCode(1) }
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
