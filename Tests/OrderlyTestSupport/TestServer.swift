import Logging
import OrderlyClient
import OrderlyProtocol
import OrderlyServer
import PostgresClient

/// A real orderlyd server (the same `OrderlyServer` the daemon runs) on 127.0.0.1 and a free
/// port, over its own fresh database.
public struct TestServer: Sendable {
    public let server: OrderlyServer
    public let database: TestDatabase

    public var port: Int { server.port }

    public func connect(events: OrderlyConnection.EventDelivery = .inResponse) async throws -> OrderlyConnection {
        try await OrderlyConnection.connect(host: "127.0.0.1", port: port, events: events)
    }

    /// A connection already logged in as `username`. With `events: .stream`, pushed events go to
    /// `connection.events` (see `nextEvent`) instead of into replies.
    public func connect(as username: String, password: String,
                        events: OrderlyConnection.EventDelivery = .inResponse) async throws -> OrderlyConnection {
        let connection = try await connect(events: events)
        let response = try await connection.authenticate(username: username, password: password)
        guard response.isSuccess else { throw TestFailure("AUTH \(username) failed: \(response.final)") }
        return connection
    }
}

public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Runs `body` against a fresh server and database; both are gone afterwards.
public func withTestServer<T>(
    table: CommandTable = .standard, prepare: (TestDatabase) async throws -> Void = { _ in },
    configure: (inout ServerConfiguration) -> Void = { _ in }, _ body: (TestServer) async throws -> T
) async throws -> T {
    try await withTestDatabase { database in
        try await prepare(database)
        var configuration = ServerConfiguration(host: "127.0.0.1", port: 0, database: database.config, poolSize: 4)
        // Reminders and delay checks run on real time; a test that wants them turns them on.
        configuration.approvalReminderSeconds = 0
        configuration.delayCheckSeconds = 0
        configuration.analyticsSeconds = 0
        configure(&configuration)
        var logger = Logger(label: "orderlyd.test")
        logger.logLevel = .warning
        let server = try await OrderlyServer.start(configuration, table: table, logger: logger)
        do {
            let result = try await body(TestServer(server: server, database: database))
            await server.shutdown()
            return result
        } catch {
            await server.shutdown()
            throw error
        }
    }
}
