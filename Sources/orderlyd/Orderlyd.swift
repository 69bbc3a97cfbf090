import ArgumentParser
import OrderlyServer

@main
struct Orderlyd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orderlyd",
        abstract: "Orderly order management server.",
        version: OrderlyVersion.current,
        subcommands: [Serve.self, Migrate.self, Commands.self],
        defaultSubcommand: Serve.self)
}
