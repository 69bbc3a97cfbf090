import Foundation
import NIOPosix
import OrderlyClient
import OrderlyProtocol
import PostgresClient

/// What the load needs to know about the database: what can be ordered, by whom, and which
/// orders exist. Read once at start, shared read-only by every connection.
struct BenchData: Sendable {
    /// Line specs (`{"sku":…}` for goods, `{"product":…}` for services) to build orders from.
    var items: [String]
    var customers: [Int64]
    var orders: [Int64]

    static let empty = BenchData(items: [], customers: [], orders: [])

    /// Reads the catalog over the protocol (as `credentials`), and customers and orders from
    /// the database when `--database-url` is given (topping stock up there too), otherwise over
    /// the protocol (creating a few customers, and orders when `needOrders` and none exist).
    static func load(options: LoadOptions, credentials: (String, String), needOrders: Bool) async throws -> BenchData {
        let connection = try await OrderlyConnection.connect(host: options.host, port: options.port)
        do {
            let data = try await load(connection, options: options, credentials: credentials, needOrders: needOrders)
            await connection.close()
            return data
        } catch {
            await connection.close()
            throw error
        }
    }

    private static func load(_ connection: OrderlyConnection, options: LoadOptions, credentials: (String, String),
                             needOrders: Bool) async throws -> BenchData {
        try await Self.expect(connection.authenticate(username: credentials.0, password: credentials.1), "AUTH \(credentials.0)")
        var data = BenchData.empty
        data.items = try await catalogItems(connection)
        guard !data.items.isEmpty else { throw BenchFailure("the catalog has no goods SKUs or services to order") }

        if let url = options.databaseURL {
            let username = credentials.0
            let (customers, orders) = try await NIOThreadPool.singleton.runIfActive {
                let db = try Connection(config: ConnectionConfig(url: url, applicationName: "orderly-bench"))
                defer { db.close() }
                // Orders of the bench must never fail for want of stock.
                try db.queryOnce("UPDATE orderly.skus SET stock_on_hand = $1::integer WHERE stock_on_hand < $1::integer", ["100000000"])
                let customers = try db.queryOnce("""
                    SELECT c.id FROM orderly.customers c
                    WHERE EXISTS (SELECT 1 FROM orderly.addresses a WHERE a.customer_id = c.id AND a.is_default)
                    ORDER BY c.id DESC LIMIT 20000
                    """).rows.compactMap { $0[0].flatMap { Int64($0) } }
                let orders = try db.queryOnce("""
                    SELECT o.id FROM orderly.orders o
                    WHERE o.created_by = (SELECT u.id FROM orderly.users u WHERE lower(u.username) = lower($1))
                    ORDER BY o.id DESC LIMIT 200000
                    """, [username]).rows.compactMap { $0[0].flatMap { Int64($0) } }
                return (customers, orders)
            }
            data.customers = customers
            data.orders = orders
        }
        if data.customers.isEmpty {
            data.customers = try await createCustomers(connection, count: 10)
        }
        if needOrders && data.orders.isEmpty {
            data.orders = try await listOrders(connection)
            if data.orders.isEmpty {
                var rng = SystemRandomNumberGenerator()
                for n in 0..<50 {
                    let line = Workload.createLine(data, key: "bench-setup-\(UUID().uuidString)-\(n)", submit: false, rng: &rng)
                    _ = try await expect(connection.request(line), "ORDER CREATE")
                }
                data.orders = try await listOrders(connection)
            }
        }
        return data
    }

    private static func catalogItems(_ connection: OrderlyConnection) async throws -> [String] {
        let catalog = try await expect(connection.request("CATALOG limit=200"), "CATALOG")
        var items: [String] = []
        for row in catalog.data {
            guard let product = object(row), let code = product["code"] as? String, let kind = product["kind"] as? String,
                  (product["active"] as? Bool) ?? true else { continue }
            switch kind {
            case "service":
                items.append("{\"product\":\(JSONText.quote(code))")
            case "goods":
                let shown = try await expect(connection.request("PRODUCT SHOW \(JSONText.quote(code))"), "PRODUCT SHOW")
                let product = shown.data.first.flatMap { object($0) }
                for sku in (product?["skus"] as? [[String: Any]]) ?? [] {
                    if let code = sku["sku"] as? String, (sku["active"] as? Bool) ?? true {
                        items.append("{\"sku\":\(JSONText.quote(code))")
                    }
                }
            default:
                continue  // custom products need parameters, bundles are one line of their own
            }
        }
        return items
    }

    private static func createCustomers(_ connection: OrderlyConnection, count: Int) async throws -> [Int64] {
        let run = UInt32.random(in: 0...UInt32.max)
        var ids: [Int64] = []
        for n in 0..<count {
            let created = try await expect(connection.request(
                "CUSTOMER CREATE name=\"Bench Customer \(run)-\(n)\" phone=\"+4930\(String(format: "%09d", n + 1))\" "
                + "email=\"bench-\(run)-\(n)@bench.example\" region=Berlin"), "CUSTOMER CREATE")
            guard let id = (created.data.first.flatMap(object)?["id"] as? NSNumber)?.int64Value else {
                throw BenchFailure("CUSTOMER CREATE returned no id")
            }
            _ = try await expect(connection.request(
                "ADDRESS ADD customer=\(id) recipient=\"Bench Buyer\" phone=\"+493012345678\" line1=\"Benchstraße \(n + 1)\" "
                + "city=Berlin region=BE postal_code=10117 country=DE"), "ADDRESS ADD")
            ids.append(id)
        }
        return ids
    }

    private static func listOrders(_ connection: OrderlyConnection) async throws -> [Int64] {
        let list = try await expect(connection.request("ORDER LIST limit=200"), "ORDER LIST")
        return list.data.compactMap { (object($0)?["id"] as? NSNumber)?.int64Value }
    }

    static func object(_ json: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any]
    }

    @discardableResult
    static func expect(_ response: Response, _ what: String) throws -> Response {
        guard response.isSuccess else { throw BenchFailure("\(what) failed: \(response.final)") }
        return response
    }
}

struct BenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The requests of a scenario.
struct Workload: Sendable {
    enum Kind: Sendable {
        case create
        case show
        case mix
        /// Every order is one unit of this item (`{"sku":…`, without its closing brace): a hot SKU.
        case flash(item: String)
    }

    let kind: Kind
    let data: BenchData
    /// Distinguishes idempotency keys of separate runs against one database.
    let run = UUID().uuidString.prefix(8).lowercased()

    init(kind: Kind, data: BenchData) {
        self.kind = kind
        self.data = data
    }

    /// The next request of an order-entry connection: (operation name, request line).
    func next(connection: Int, sequence: Int, rng: inout some RandomNumberGenerator) -> (String, String) {
        switch kind {
        case .create:
            return ("create", Self.createLine(data, key: "bench-\(run)-\(connection)-\(sequence)", submit: true, rng: &rng))
        case .show:
            return ("show", "ORDER SHOW \(data.orders.randomElement(using: &rng)!)")
        case .flash(let item):
            return ("create", "ORDER CREATE customer=\(data.customers.randomElement(using: &rng)!) lines=[\(item),\"qty\":1}]"
                        + " submit=true idempotency_key=bench-\(run)-\(connection)-\(sequence)")
        case .mix:
            let roll = Int.random(in: 0..<100, using: &rng)
            switch roll {
            case ..<45:
                return ("create", Self.createLine(data, key: "bench-\(run)-\(connection)-\(sequence)", submit: true, rng: &rng))
            case ..<80 where !data.orders.isEmpty:
                return ("show", "ORDER SHOW \(data.orders.randomElement(using: &rng)!)")
            case ..<90:
                return ("list", "ORDER LIST limit=20")
            default:
                return ("quote", "ORDER QUOTE customer=\(data.customers.randomElement(using: &rng)!) lines=\(Self.lines(data, rng: &rng))")
            }
        }
    }

    /// `ORDER CREATE` of a random customer with 3–10 distinct catalog lines.
    static func createLine(_ data: BenchData, key: String, submit: Bool, rng: inout some RandomNumberGenerator) -> String {
        "ORDER CREATE customer=\(data.customers.randomElement(using: &rng)!) lines=\(lines(data, rng: &rng))"
            + (submit ? " submit=true" : "") + " idempotency_key=\(key)"
    }

    static func lines(_ data: BenchData, rng: inout some RandomNumberGenerator) -> String {
        let count = min(Int.random(in: 3...10, using: &rng), data.items.count)
        let picked = data.items.shuffled(using: &rng).prefix(count)
        return "[" + picked.map { "\($0),\"qty\":\(Int.random(in: 1...5, using: &rng))}" }.joined(separator: ",") + "]"
    }
}
