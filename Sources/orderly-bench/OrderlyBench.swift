import ArgumentParser
import Foundation
import OrderlyProtocol

/// `orderly-bench`: drives an Orderly server with many connections and reports throughput,
/// latency percentiles (HDR histogram) and errors by code; `seed` fills a database with data.
@main
struct OrderlyBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orderly-bench",
        abstract: "Load generator and data generator for an Orderly server.",
        discussion: """
            Each connection is its own task with one request in flight (ping: event-loop handlers, --depth pipelines). \
            Latencies are measured from writing a request to reading its final line.

            Example: orderly-bench create --port 7400 --connections 32 --duration 10 \
            --database-url postgresql://postgres@127.0.0.1/orderly
            """,
        subcommands: [Ping.self, Create.self, Flash.self, Show.self, Mix.self, Idle.self, AuthFlood.self, Seed.self, Verify.self])
}

/// The flags every load scenario shares.
struct LoadOptions: ParsableArguments {
    @Option(help: "Server host.") var host = "127.0.0.1"
    @Option(help: "Server port.") var port = 7400
    @Option(help: "Concurrent connections, one task and one request in flight each.") var connections = 8
    @Option(help: "Measured seconds.") var duration: Double = 10
    @Option(help: "Seconds of load before measuring starts.") var warmup: Double = 2
    @Option(name: .customLong("user"), help: "Log in as this user (repeat for several: connections take them in turn).")
    var users: [String] = []
    @Option(name: .customLong("password"), help: "Password of the --user at the same position (default: <user>-demo, the demo passwords).")
    var passwords: [String] = []
    @Option(name: .customLong("database-url"), help: "PostgreSQL URL of the server's database (superuser): tops up stock and finds customers and orders. Optional.")
    var databaseURL: String?
    @Flag(help: "Print the result as one JSON object.") var json = false

    func validate() throws {
        guard connections >= 1 else { throw ValidationError("--connections must be at least 1") }
        guard duration > 0, warmup >= 0 else { throw ValidationError("--duration must be > 0 and --warmup >= 0") }
        guard passwords.count <= max(users.count, 1) else { throw ValidationError("more --password than --user") }
    }

    /// (username, password) of connection `index`, or nil to stay unauthenticated.
    func credentials(defaultUser: String?) -> [(String, String)] {
        let names = users.isEmpty ? (defaultUser.map { [$0] } ?? []) : users
        return names.enumerated().map { index, name in
            (name, index < passwords.count ? passwords[index] : "\(name)-demo")
        }
    }
}

struct Ping: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "PING round trips (before AUTH unless --user is given).")
    @OptionGroup var options: LoadOptions
    @Option(help: "PINGs sent at once per connection (pipelining); 1 = plain round trips.") var depth = 1

    func run() async throws {
        guard depth >= 1 else { throw ValidationError("--depth must be at least 1") }
        let tally = try await PingDriver(options: options, depth: depth, credentials: options.credentials(defaultUser: nil)).run()
        let report = Report(scenario: "ping", connections: options.connections, seconds: options.duration, tally: tally)
        print(options.json ? report.json() : report.text())
    }
}

struct Create: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "ORDER CREATE … submit=true with 3–10 lines from the catalog.",
        discussion: """
            With --verify FILE every acknowledged order (+OK) is appended to FILE as \
            key<TAB>order_id<TAB>total and fsynced before it counts; a request that meets a lost \
            connection, -UNAVAILABLE or -BUSY is retried with the same idempotency key until the \
            run ends. Check the result with `orderly-bench verify`.
            """)
    @OptionGroup var options: LoadOptions
    @Option(name: .customLong("verify"), help: "Record acknowledged orders in this file (emptied first) and retry lost requests.")
    var verifyFile: String?

    func run() async throws {
        let credentials = options.credentials(defaultUser: "sales_rep")
        let data = try await BenchData.load(options: options, credentials: credentials[0], needOrders: false)
        let log = try verifyFile.map { try AckLog(path: $0) }
        try await Runner(options: options, workload: Workload(kind: .create, data: data), credentials: credentials, ackLog: log)
            .runAndReport(name: "create")
        log?.close()
    }
}

struct Flash: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A flash sale: every connection orders one unit of the same SKU (ORDER CREATE … submit=true).",
        discussion: """
            Every order waits for the SKU's row in its last statements, one after the other: this \
            measures what serialises on a hot SKU. Whether anything was oversold is checked from \
            the database afterwards (make bench does).
            """)
    @OptionGroup var options: LoadOptions
    @Option(help: "The SKU every order takes (default: the first goods SKU of the catalog).") var sku: String?

    func run() async throws {
        let credentials = options.credentials(defaultUser: "sales_rep")
        let data = try await BenchData.load(options: options, credentials: credentials[0], needOrders: false)
        let item: String
        if let sku {
            item = "{\"sku\":\(JSONText.quote(sku))"
        } else if let first = data.items.first(where: { $0.hasPrefix("{\"sku\"") }) {
            item = first
        } else {
            throw BenchFailure("the catalog has no goods SKU")
        }
        try await Runner(options: options, workload: Workload(kind: .flash(item: item), data: data), credentials: credentials)
            .runAndReport(name: "flash")
    }
}

struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "ORDER SHOW of random existing orders the user may see.")
    @OptionGroup var options: LoadOptions

    func run() async throws {
        let credentials = options.credentials(defaultUser: "sales_rep")
        let data = try await BenchData.load(options: options, credentials: credentials[0], needOrders: true)
        try await Runner(options: options, workload: Workload(kind: .show, data: data), credentials: credentials)
            .runAndReport(name: "show")
    }
}

struct Mix: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Order entry in the spirit of TPC-C: create, show, list, quote; approvals by approver users.",
        discussion: """
            Order-entry connections (the --user list, default sales_rep) choose per request: 45% \
            ORDER CREATE submit=true, 35% ORDER SHOW, 10% ORDER LIST, 10% ORDER QUOTE. Every \
            --approver-every-th connection is an approver instead (sales_supervisor and \
            sales_manager in turn): APPROVAL QUEUE, then ORDER APPROVE of one order in it.
            """)
    @OptionGroup var options: LoadOptions
    @Option(help: "Every n-th connection approves (0: none).") var approverEvery = 8
    @Option(name: .customLong("approver"), help: "Approver users, taken in turn (password <user>-demo).")
    var approvers: [String] = ["sales_supervisor", "sales_manager"]

    func run() async throws {
        let credentials = options.credentials(defaultUser: "sales_rep")
        let data = try await BenchData.load(options: options, credentials: credentials[0], needOrders: true)
        try await Runner(options: options, workload: Workload(kind: .mix, data: data), credentials: credentials,
                         approvers: approverEvery > 0 ? approvers.map { ($0, "\($0)-demo") } : [],
                         approverEvery: approverEvery)
            .runAndReport(name: "mix")
    }
}
