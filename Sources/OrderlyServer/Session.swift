import Logging
import NIOCore
import OrderlyProtocol

/// One client connection's state and its request handling: parse, look up, authorise, run.
/// Requests are handled one after another, so replies go out in request order.
final class Session {
    struct Outcome {
        var reply: String
        var close = false
    }

    private let table: CommandTable
    private let database: OrderlyDatabase
    private let configuration: ServerConfiguration
    private let clientAddress: String
    private var logger: Logger
    private(set) var identity: Identity?

    init(table: CommandTable, database: OrderlyDatabase, configuration: ServerConfiguration, clientAddress: String, logger: Logger) {
        self.table = table
        self.database = database
        self.configuration = configuration
        self.clientAddress = clientAddress
        self.logger = logger
    }

    var greeting: String {
        Reply.info("orderly proto=\(OrderlyVersion.protocolVersion) version=\(configuration.version) auth=required maxline=\(configuration.limits.maxLineBytes)")
    }

    func handle(_ frame: InboundFrame) async -> Outcome {
        switch frame {
        case .tooLong:
            return Outcome(reply: Reply.error(.lineTooLong, "request line longer than \(configuration.limits.maxLineBytes) bytes; discarded"))
        case .line(let buffer):
            do {
                return try await handle(Request(parsing: buffer.readableBytesView, limits: configuration.limits))
            } catch let error as ProtocolError {
                return Outcome(reply: Reply.error(error))
            } catch {
                logger.error("unexpected error", metadata: ["error": "\(error)"])
                return Outcome(reply: Reply.error(.internal, "internal error"))
            }
        }
    }

    private func handle(_ request: Request) async throws -> Outcome {
        let words = request.commandWords
        guard let command = table.resolve(words) else {
            let name = words.first ?? "(none)"
            throw ProtocolError(.unknownCommand, "unknown command '\(name.prefix(64))'; HELP lists the commands")
        }
        guard command.beforeAuth || identity != nil else {
            throw ProtocolError(.noAuth, "authenticate first: AUTH username password")
        }
        if let permission = command.permission, identity?.permissions.contains(permission) != true {
            throw ProtocolError(.forbidden, "permission denied: \(command.name) needs \(permission)")
        }
        switch command.action {
        case .builtin(let builtin):
            return try await run(builtin, request, command)
        case .sql(let function):
            let arguments = try request.argumentObject(skipping: command.wordCount, positionalNames: command.positional)
            return try await call(function, arguments: arguments)
        }
    }

    private func call(_ function: String, arguments: String) async throws -> Outcome {
        guard let identity else { throw ProtocolError(.noAuth, "authenticate first: AUTH username password") }
        do {
            let rows = try await database.call(function, actor: identity.userId, arguments: arguments)
            var reply = ""
            for row in rows { reply += Reply.data(row) }
            return Outcome(reply: reply + Reply.ok(rows.count == 1 ? "1 row" : "\(rows.count) rows"))
        } catch let error as ProtocolError where error.code == .authFailed {
            // The database no longer accepts this user (locked, removed): the session ends its login.
            self.identity = nil
            throw ProtocolError(.noAuth, "\(error.message); authenticate again")
        }
    }

    private func run(_ builtin: Command.Builtin, _ request: Request, _ command: Command) async throws -> Outcome {
        let values = request.positionalValues(skipping: command.wordCount)
        switch builtin {
        case .ping:
            return Outcome(reply: Reply.success("PONG"))
        case .quit:
            return Outcome(reply: Reply.ok("bye"), close: true)
        case .hello:
            let info = "{\"server\":\"orderly\",\"version\":\(JSONText.quote(configuration.version)),\"proto\":\(OrderlyVersion.protocolVersion)," +
                "\"auth\":\"required\",\"authenticated\":\(identity != nil),\"maxline\":\(configuration.limits.maxLineBytes)}"
            return Outcome(reply: Reply.data(info) + Reply.ok("orderly \(configuration.version)"))
        case .auth:
            guard values.count == 2, request.tokens.count == 3 else {
                throw ProtocolError(.badSyntax, "usage: AUTH username password")
            }
            identity = nil
            let identity = try await database.authenticate(
                username: values[0].text, password: values[1].text, clientAddress: clientAddress, policy: configuration)
            self.identity = identity
            logger[metadataKey: "user"] = "\(identity.username)"
            logger.info("authenticated")
            return Outcome(reply: Reply.ok("authenticated as \(identity.username)"))
        case .help:
            return try help(values)
        }
    }

    private func help(_ values: [Value]) throws -> Outcome {
        let visible = table.commands.filter { command in
            command.beforeAuth || (identity != nil && (command.permission.map { identity!.permissions.contains($0) } ?? true))
        }
        var shown = visible
        if let wanted = values.first {
            let name = values.map { $0.text.uppercased() }.joined(separator: " ")
            guard let command = visible.first(where: { $0.name == name }) ?? visible.first(where: { $0.name.hasPrefix(name) }) else {
                throw ProtocolError(.notFound, "no command '\(wanted.text.prefix(64))' that you may run")
            }
            shown = [command]
        }
        var reply = ""
        for command in shown {
            let permission = command.permission.map(JSONText.quote) ?? "null"
            reply += Reply.data("{\"command\":\(JSONText.quote(command.name)),\"usage\":\(JSONText.quote(command.usage)),\"permission\":\(permission),\"summary\":\(JSONText.quote(command.summary))}")
        }
        return Outcome(reply: reply + Reply.ok(shown.count == 1 ? "1 command" : "\(shown.count) commands"))
    }
}
