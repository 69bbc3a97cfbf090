/// One protocol command: `VERB [NOUN]` → what runs it, the permission it needs, and the names of
/// its positional arguments (DESIGN.md §2). Adding a command is one SQL function plus one row.
public struct Command: Sendable {
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
    /// Allowed before AUTH.
    public let beforeAuth: Bool
    public let usage: String
    public let summary: String

    public init(_ name: String, _ action: Action, permission: String? = nil, positional: [String] = [], beforeAuth: Bool = false, usage: String? = nil, summary: String) {
        self.name = name
        self.action = action
        self.permission = permission
        self.positional = positional
        self.beforeAuth = beforeAuth
        self.usage = usage ?? name
        self.summary = summary
    }

    var wordCount: Int { name.split(separator: " ").count }
}

/// The commands a server answers, looked up by their leading words.
public struct CommandTable: Sendable {
    public let commands: [Command]
    private let byName: [String: Command]

    public init(_ commands: [Command]) {
        self.commands = commands
        self.byName = Dictionary(commands.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// The longest command whose words start the request: `ORDER SHOW 1` finds `ORDER SHOW`
    /// before `ORDER`.
    public func resolve(_ words: [String]) -> Command? {
        if words.count >= 2, let command = byName[words[0] + " " + words[1]] { return command }
        return words.first.flatMap { byName[$0] }
    }

    public static let standard = CommandTable([
        Command("HELLO", .builtin(.hello), beforeAuth: true, summary: "Server name, version, protocol and limits."),
        Command("AUTH", .builtin(.auth), beforeAuth: true, usage: "AUTH username password",
                summary: "Log in. Quote a password with spaces as a JSON string: AUTH alice \"my secret\"."),
        Command("PING", .builtin(.ping), beforeAuth: true, summary: "Answers +PONG."),
        Command("HELP", .builtin(.help), beforeAuth: true, usage: "HELP [command]",
                summary: "The commands you may run now, or the usage of one."),
        Command("QUIT", .builtin(.quit), beforeAuth: true, summary: "Close the connection."),
        Command("WHOAMI", .sql(function: "api.whoami"), summary: "Your username, display name, roles and permissions."),
        Command("INBOX", .sql(function: "api.inbox"), permission: "inbox.read", usage: "INBOX [unread=true] [limit=N] [before=id]",
                summary: "Your notifications, newest first: the events pushed to you, also those sent while you were offline."),
        Command("INBOX ACK", .sql(function: "api.inbox_ack"), permission: "inbox.read", positional: ["id"], usage: "INBOX ACK id|all",
                summary: "Mark one notification, or all of them, as read."),
        Command("CUSTOMER CREATE", .sql(function: "api.customer_create"), permission: "customer.manage",
                usage: "CUSTOMER CREATE name= phone= email= [company=] [segment=] [region=]",
                summary: "Create a customer. Phone in international form (+49 30 1234567); e-mail unique."),
        Command("CUSTOMER UPDATE", .sql(function: "api.customer_update"), permission: "customer.manage", positional: ["id"],
                usage: "CUSTOMER UPDATE id [name=] [phone=] [email=] [company=] [segment=] [region=]",
                summary: "Change the fields given; an empty company or region clears it."),
        Command("CUSTOMER SHOW", .sql(function: "api.customer_show"), permission: "customer.read", positional: ["id"],
                usage: "CUSTOMER SHOW id", summary: "A customer with its addresses (default first) and an order summary."),
        Command("CUSTOMER FIND", .sql(function: "api.customer_find"), permission: "customer.read", positional: ["q"],
                usage: "CUSTOMER FIND q= [limit=20]",
                summary: "Customers whose name, e-mail or phone contains q (at least 3 characters), best matches first."),
        Command("ADDRESS ADD", .sql(function: "api.address_add"), permission: "customer.manage",
                usage: "ADDRESS ADD customer= recipient= phone= line1= [line2=] city= region= postal_code= country= [label=] [default=true]",
                summary: "Add a ship-to address (ISO 3166-1 country code). A customer's first address is its default."),
        Command("ADDRESS UPDATE", .sql(function: "api.address_update"), permission: "customer.manage", positional: ["id"],
                usage: "ADDRESS UPDATE id [recipient=] [phone=] [line1=] [line2=] [city=] [region=] [postal_code=] [country=] [label=] [default=true]",
                summary: "Change the fields given; default=true makes it the customer's default address."),
        Command("ADDRESS REMOVE", .sql(function: "api.address_remove"), permission: "customer.manage", positional: ["id"],
                usage: "ADDRESS REMOVE id",
                summary: "Remove an address (orders that used it keep it); the newest other address becomes the default."),
        Command("STATS", .builtin(.stats), permission: "stats.read",
                summary: "Server figures: connections, requests and errors by code, pool use, p50/p99 latency per command."),
    ])
}
