import OrderlyProtocol
import Foundation
import PostgresClient

/// The commands of the registry in PostgreSQL (`orderly.commands`, one row per `api` function,
/// written beside the function in `sql/`), as `api.command_registry()` lists them.
public enum RegisteredCommands {
    struct Row: Decodable {
        let name: String
        let function: String
        let permission: String?
        let positional: [String]
        let arguments: [Command.Argument]
        let usage: String
        let summary: String
        let changes: Bool
        let staffOnly: Bool?

        enum CodingKeys: String, CodingKey {
            case name, function, permission, positional, arguments, usage, summary, changes, staffOnly = "staff_only"
        }
    }

    struct Malformed: Error, CustomStringConvertible {
        let description: String
    }

    /// `SELECT * FROM api.command_registry()`, one JSON document per row.
    static let query = "SELECT * FROM api.command_registry()"

    /// One row as a command. The function name becomes part of the SQL the server runs, so it is
    /// held to the registry's own rule (`api.` and a lower-case identifier) once more here.
    static func command(fromJSON json: String) throws -> Command {
        let row: Row
        do {
            row = try JSONDecoder().decode(Row.self, from: Data(json.utf8))
        } catch {
            throw Malformed(description: "unreadable registry row: \(error)")
        }
        guard isSafeFunctionName(row.function) else {
            throw Malformed(description: "command \(row.name): function name \(row.function) is not api.<identifier>")
        }
        let words = row.name.split(separator: " ")
        guard !words.isEmpty, words.count <= CommandTable.maxWords else {
            throw Malformed(description: "command \(row.name): one to \(CommandTable.maxWords) words")
        }
        return Command(row.name, .sql(function: row.function), permission: row.permission, positional: row.positional,
                       arguments: row.arguments, changes: row.changes, staffOnly: row.staffOnly ?? false, usage: row.usage, summary: row.summary)
    }

    static func commands(fromRows rows: [String?]) throws -> [Command] {
        try rows.map { try command(fromJSON: $0 ?? "null") }
    }

    static func isSafeFunctionName(_ name: String) -> Bool {
        guard name.hasPrefix("api.") else { return false }
        let identifier = name.utf8.dropFirst(4)
        guard let first = identifier.first, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first) || first == UInt8(ascii: "_") else {
            return false
        }
        return identifier.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
        }
    }

    /// Reads the registry over a connection of its own (for `orderlyd commands` and tests).
    public static func load(_ config: ConnectionConfig) throws -> [Command] {
        let connection = try Connection(config: config)
        defer { connection.close() }
        return try commands(fromRows: try connection.query(query).rows.map { $0.first.flatMap { $0 } })
    }
}
