import NIOConcurrencyHelpers
import OrderlyProtocol
import OrderlyStore

/// The commands a server answers now: its built-ins (and any extra commands it was started
/// with), then the registry rows last read from PostgreSQL. Replaced whole when the registry
/// changes (NOTIFY orderly_commands), so a session always resolves against one consistent table.
final class LiveCommandTable: Sendable {
    private struct State {
        var table: CommandTable
        /// Reloads are numbered as they start; a slower, older one never replaces a newer one.
        var started = 0
        var applied = 0
    }

    private let builtins: CommandTable
    private let state: NIOLockedValueBox<State>

    init(builtins: CommandTable) {
        self.builtins = builtins
        self.state = NIOLockedValueBox(State(table: builtins))
    }

    var table: CommandTable { state.withLockedValue { $0.table } }

    /// Reads the registry again through `database` and swaps the table in.
    func reload(from database: OrderlyDatabase) async throws {
        let ticket = state.withLockedValue { state -> Int in
            state.started += 1
            return state.started
        }
        let registered = try await database.registeredCommands()
        let table = builtins.adding(registered)
        state.withLockedValue { state in
            guard ticket > state.applied else { return }
            state.table = table
            state.applied = ticket
        }
    }
}
