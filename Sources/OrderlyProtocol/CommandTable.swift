/// One protocol command: `VERB [NOUN]` → what runs it, the permission it needs, and the names of
/// its arguments. The built-ins are written below; every other command is a row of the registry
/// in PostgreSQL, read by `RegisteredCommands`.
public struct Command: Sendable {
    /// A named argument as the registry lists it (`orderly.command_arguments`).
    public struct Argument: Sendable, Equatable, Decodable {
        public let name: String
        /// id, integer, number, text, code, boolean, date, timestamp, object, array or any.
        public let type: String
        public let required: Bool

        public init(name: String, type: String, required: Bool) {
            self.name = name
            self.type = type
            self.required = required
        }
    }

    public enum Action: Sendable, Equatable {
        /// Handled by the session itself (HELLO, AUTH, PING, HELP, QUIT).
        case builtin(Builtin)
        /// `SELECT * FROM api.<function>(actor, args)`: one round trip, one data line per row.
        case sql(function: String)
    }

    public enum Builtin: Sendable, Equatable {
        case hello, auth, ping, help, quit, stats
    }

    /// Upper-case words, e.g. `WHOAMI` or `ORDER SHOW`.
    public let name: String
    public let action: Action
    /// Needed by the session's role; nil: any authenticated user (or anyone, if `beforeAuth`).
    public let permission: String?
    /// Names given to positional arguments, in order (`ORDER SHOW 1042` → `{"id":1042}`).
    public let positional: [String]
    /// Every argument a registered command accepts (the database refuses any other); empty for
    /// the built-ins, which read their own.
    public let arguments: [Argument]
    /// Allowed before AUTH.
    public let beforeAuth: Bool
    /// Creates or changes something (the registry's `changes`): it takes an `idempotency_key`,
    /// and a lost connection while it ran leaves its outcome in doubt.
    public let changes: Bool
    /// For staff only (the registry's `staff_only`): a customer login is refused it whatever its
    /// roles grant, and HELP does not list it to one.
    public let staffOnly: Bool
    public let usage: String
    public let summary: String

    public init(_ name: String, _ action: Action, permission: String? = nil, positional: [String] = [], arguments: [Argument] = [],
                beforeAuth: Bool = false, changes: Bool = false, staffOnly: Bool = false, usage: String? = nil, summary: String) {
        self.name = name
        self.action = action
        self.permission = permission
        self.positional = positional
        self.arguments = arguments
        self.beforeAuth = beforeAuth
        self.changes = changes
        self.staffOnly = staffOnly
        self.usage = usage ?? name
        self.summary = summary
    }

    public var wordCount: Int { name.split(separator: " ").count }
}

/// The commands a server answers, looked up by their leading words.
public struct CommandTable: Sendable {
    public let commands: [Command]
    private let byName: [String: Command]

    public init(_ commands: [Command]) {
        self.commands = commands
        self.byName = Dictionary(commands.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// The longest command whose words start the request: `ORDER LINE ADD order=1` finds
    /// `ORDER LINE ADD` before `ORDER LINE` and `ORDER`.
    public func resolve(_ words: [String]) -> Command? {
        for count in stride(from: min(words.count, Self.maxWords), through: 1, by: -1) {
            if let command = byName[words.prefix(count).joined(separator: " ")] { return command }
        }
        return nil
    }

    /// The most words a command name has.
    public static let maxWords = 3

    /// The built-in commands, answered by the session itself. Every other command is a row of
    /// the registry in PostgreSQL (`orderly.commands`, see `RegisteredCommands`).
    public static let standard = CommandTable([
        Command("HELLO", .builtin(.hello), beforeAuth: true, summary: "Server name, version, protocol and limits."),
        Command("AUTH", .builtin(.auth), beforeAuth: true, usage: "AUTH username password",
                summary: "Log in. Quote a password with spaces as a JSON string: AUTH alice \"my secret\"."),
        Command("PING", .builtin(.ping), beforeAuth: true, summary: "Answers +PONG."),
        Command("HELP", .builtin(.help), beforeAuth: true, usage: "HELP [command]",
                summary: "The commands you may run now, those starting with a word (HELP ORDER), or the usage of one."),
        Command("QUIT", .builtin(.quit), beforeAuth: true, summary: "Close the connection."),
        // Server-wide figures: never a customer's, whatever an admin marks stats.read.
        Command("STATS", .builtin(.stats), permission: "stats.read", staffOnly: true,
                summary: "Server figures: connections, requests and errors by code, pool use, p50/p99 latency per command."),
    ])

    /// This table's commands, then those of `other` whose names it does not have.
    public func adding(_ other: [Command]) -> CommandTable {
        CommandTable(commands + other.filter { byName[$0.name] == nil })
    }
}
