import ArgumentParser
import Logging
import OrderlyServer
import OrderlyStore

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply pending migrations and exit.")

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let logger = database.makeLogger()
        // The folder is claimed as a server claims it (a server running on it refuses this);
        // a cluster found running was left by a crash: leave it running.
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
