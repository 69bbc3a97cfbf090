import ArgumentParser
import Foundation
import OrderlyProtocol
import OrderlyStore
import PostgresClient

/// `orderlyd commands --database-url …`: the command reference as the registry of a migrated
/// database says it (`make readme` puts it into the README).
struct Commands: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the command reference (Markdown) from a migrated database's registry.")

    @Option(help: "PostgreSQL URL or conninfo of a migrated database (env ORDERLY_DATABASE_URL).")
    var databaseURL: String?

    func run() throws {
        guard let url = databaseURL ?? ProcessInfo.processInfo.environment["ORDERLY_DATABASE_URL"] else {
            throw ValidationError("give --database-url (a migrated database)")
        }
        let registered = try RegisteredCommands.load(ConnectionConfig(url: url))
        print(CommandReference.markdown(CommandTable.standard.adding(registered)), terminator: "")
    }
}
