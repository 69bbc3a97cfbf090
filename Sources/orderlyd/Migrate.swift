import ArgumentParser
import Logging
import OrderlyServer
import OrderlyStore

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply pending migrations and exit.")

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let logger = database.makeLogger()
        // A cluster found running belongs to a running server: leave it be.
        let (connection, embedded, started) = try await database.connect(logger: logger)
        let report: Migrator.Report
        do {
            report = try await database.migrator().migrate(connection, logger: logger)
        } catch {
            if started { await DatabaseOptions.stop(embedded) }
            throw error
        }
        if started { await DatabaseOptions.stop(embedded) }
        Console.say(report.applied.isEmpty ? "database is current; nothing to apply" : "applied: " + report.applied.joined(separator: ", "))
    }
}
