import OrderlyStore

/// What every session shares: the configuration, the command table, the database, the open
/// sessions and the figures.
struct ServerContext: Sendable {
    let configuration: ServerConfiguration
    let commands: LiveCommandTable
    let database: OrderlyDatabase
    let sessions: SessionRegistry
    let metrics: ServerMetrics
}
