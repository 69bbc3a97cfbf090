import LineFraming
import OrderlyStore
import Logging
import NIOCore
import OrderlyProtocol

/// One client connection's request handling: parse, look up, authorise, run. Requests are
/// handled one after another, so replies go out in request order.
final class Session {
    struct Outcome {
        var reply: [UInt8]
        var close = false

        init(reply: String, close: Bool = false) {
            self.reply = Array(reply.utf8)
            self.close = close
        }

        /// A command's rows as the database call wrote them, then its `+OK` line.
        init(lines: OrderlyDatabase.DataLines) {
            reply = lines.bytes
            reply.append(contentsOf: Reply.ok(lines.count == 1 ? "1 row" : "\(lines.count) rows").utf8)
        }
    }

    private let handle: SessionHandle
    private let server: ServerContext
    private let clientAddress: String
    private var logger: Logger
    private var oversizedLines = 0

    init(handle: SessionHandle, server: ServerContext, clientAddress: String, logger: Logger) {
        self.handle = handle
        self.server = server
        self.clientAddress = clientAddress
        self.logger = logger
    }

    private var configuration: ServerConfiguration { server.configuration }
    private var identity: Identity? { handle.identity }

    var greeting: String {
        Reply.info("orderly proto=\(OrderlyVersion.protocolVersion) version=\(configuration.version) auth=required maxline=\(configuration.limits.maxLineBytes)")
    }

    func handle(_ frame: InboundFrame) async -> Outcome {
        let started = ContinuousClock.now
        var command = "(invalid)"
        var outcome: Outcome
        var failure: ErrorCode?
        do {
            switch frame {
            case .tooLong:
                oversizedLines += 1
                let message = "request line longer than \(configuration.limits.maxLineBytes) bytes; discarded"
                guard oversizedLines < configuration.maxOversizedLines else {
                    throw Closing(ProtocolError(.lineTooLong, message + "; too many, closing"))
                }
                throw ProtocolError(.lineTooLong, message)
            case .line(let buffer):
                let request = try Request(parsing: buffer.readableBytesView, limits: configuration.limits)
                let resolved = try resolve(request)
                command = resolved.name
                outcome = try await run(resolved, request)
            }
        } catch let closing as Closing {
            failure = closing.error.code
            outcome = Outcome(reply: Reply.error(closing.error), close: true)
        } catch let error as ProtocolError {
            failure = error.code
            outcome = Outcome(reply: Reply.error(error))
        } catch {
            logger.error("unexpected error", metadata: ["error": "\(error)"])
            failure = .internal
            outcome = Outcome(reply: Reply.error(.internal, "internal error"))
        }
        let elapsed = ContinuousClock.now - started
        server.metrics.record(command: command, error: failure, microseconds: UInt64(max(0, elapsed / .microseconds(1))))
        return outcome
    }

    /// The reply, then the connection closes.
    private struct Closing: Error {
        let error: ProtocolError
        init(_ error: ProtocolError) { self.error = error }
    }

    private func resolve(_ request: Request) throws -> Command {
        let words = request.commandWords
        guard let command = server.commands.table.resolve(words) else {
            let name = words.first ?? "(none)"
            // ORDER FOO: the first word is a family of commands, the second is what is wrong.
            if words.count > 1, server.commands.table.commands.contains(where: { $0.name.hasPrefix(name + " ") }) {
                throw ProtocolError(.unknownCommand,
                                    "unknown command '\(name) \(words[1].prefix(64))'; HELP \(name) lists the \(name) commands")
            }
            throw ProtocolError(.unknownCommand, "unknown command '\(name.prefix(64))'; HELP lists the commands")
        }
        return command
    }

    private func run(_ command: Command, _ request: Request) async throws -> Outcome {
        guard command.beforeAuth || identity != nil else {
            throw ProtocolError(.noAuth, "authenticate first: AUTH username password")
        }
        // A built-in command has no database function to check rights again, so its rights are
        // read fresh; SQL commands are re-checked inside their own transaction anyway.
        let builtinWithPermission = command.permission != nil && { if case .builtin = command.action { return true } else { return false } }()
        if handle.pendingRightsChange() != nil || builtinWithPermission { try await refreshIdentity() }
        if let permission = command.permission, identity?.permissions.contains(permission) != true {
            // Rights granted a moment ago may not have reached us yet: look once more.
            try await refreshIdentity()
            guard identity?.permissions.contains(permission) == true else {
                throw ProtocolError(.forbidden, "permission denied: \(command.name) needs \(permission)")
            }
        }
        switch command.action {
        case .builtin(let builtin):
            // SQL commands refuse a customer's login themselves (orderly.begin_command).
            if command.staffOnly && identity?.customer == true {
                throw ProtocolError(.forbidden, "\(command.name) is for staff")
            }
            return try await run(builtin, request, command)
        case .sql(let function):
            let arguments = try request.argumentObject(skipping: command.wordCount, positionalNames: command.positional)
            return try await call(function, arguments: arguments, changes: command.changes)
        }
    }

    /// The session loses its login (it stays open, as before AUTH) and stops counting towards its
    /// user's sessions.
    private func endLogin(asOf changes: Int? = nil) {
        handle.setIdentity(nil, asOf: changes)
        server.sessions.logout(handle)
    }

    /// Re-reads this user's roles and permissions; a user who was locked or removed is logged out.
    private func refreshIdentity() async throws {
        guard let current = identity else { return }
        let asOf = handle.rightsChanges
        do {
            let fresh = try await server.database.identity(userId: current.userId)
            if let reason = fresh.reasonToEnd(sessionOf: current) {
                endLogin(asOf: asOf)
                throw ProtocolError(.noAuth, "your session has ended (\(reason)); authenticate again")
            }
            handle.setIdentity(fresh, asOf: asOf)
        } catch let error as ProtocolError where [.authFailed, .notFound, .locked].contains(error.code) {
            endLogin(asOf: asOf)
            throw ProtocolError(.noAuth, "your session has ended (\(error.message)); authenticate again")
        }
    }

    private func call(_ function: String, arguments: String, changes: Bool) async throws -> Outcome {
        guard let identity else { throw ProtocolError(.noAuth, "authenticate first: AUTH username password") }
        do {
            return Outcome(lines: try await server.database.call(function, actor: identity.userId, arguments: arguments,
                                                                 changes: changes, maxReplyBytes: configuration.maxReplyBytes))
        } catch let error as ProtocolError where error.code == .authFailed {
            // The database no longer accepts this user (locked, removed): the session ends its login.
            endLogin()
            throw ProtocolError(.noAuth, "\(error.message); authenticate again")
        }
    }

    private func run(_ builtin: Command.Builtin, _ request: Request, _ command: Command) async throws -> Outcome {
        let values = request.positionalValues(skipping: command.wordCount)
        // No built-in takes key=value and only AUTH and HELP take words: anything else sent with
        // one is refused, as the registry refuses an argument a command does not list. (AUTH checks
        // its own shape: an unquoted password may look like key=value and must not be echoed.)
        if builtin != .auth {
            if let key = request.namedKeys(skipping: command.wordCount).first {
                throw ProtocolError(.invalid, "unknown argument \"\(key.prefix(64))\"; usage: \(command.usage)")
            }
            if builtin != .help, !values.isEmpty {
                throw ProtocolError(.badSyntax, "\(command.name) takes no arguments")
            }
        }
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
            endLogin()
            let asOf = handle.rightsChanges
            let identity = try await server.database.authenticate(
                username: values[0].text, password: values[1].text, clientAddress: clientAddress, policy: configuration.login)
            guard server.sessions.login(handle, userId: identity.userId, max: configuration.maxSessionsPerUser) else {
                logger.notice("login refused: too many sessions", metadata: ["login": "\(identity.username)"])
                throw ProtocolError(.busy, "\(identity.username) has \(configuration.maxSessionsPerUser) sessions open, the most one user may have; close one, or log in as another user")
            }
            handle.setIdentity(identity, asOf: asOf)
            logger[metadataKey: "user"] = "\(identity.username)"
            logger.info("authenticated")
            return Outcome(reply: Reply.ok("authenticated as \(identity.username)"))
        case .help:
            return try help(values)
        case .stats:
            let pool = server.database.pool
            let lines = server.metrics.report(openConnections: server.sessions.count, maxConnections: configuration.maxConnections,
                                              poolSize: pool.size, poolInUse: pool.inUse, poolWaiting: pool.waiting)
            return Outcome(reply: lines.map(Reply.data).joined() + Reply.ok("\(lines.count) rows"))
        }
    }

    private func help(_ values: [Value]) throws -> Outcome {
        let visible = server.commands.table.commands.filter { command in
            command.beforeAuth || (identity != nil && (command.permission.map { identity!.permissions.contains($0) } ?? true)
                                   && !(command.staffOnly && identity!.customer == true))
        }
        var shown = visible
        if !values.isEmpty {
            // The command named, else every command that begins with the words given (HELP ORDER:
            // all ORDER commands), else every command that begins with the text (HELP ORD).
            let name = values.map { Request.asciiUppercased($0.text) }.joined(separator: " ")
            if let command = visible.first(where: { $0.name == name }) {
                shown = [command]
            } else {
                let byWords = visible.filter { $0.name.hasPrefix(name + " ") }
                shown = byWords.isEmpty ? visible.filter { $0.name.hasPrefix(name) } : byWords
            }
            guard !shown.isEmpty else { throw ProtocolError(.notFound, "no command '\(name.prefix(64))' that you may run") }
        }
        var reply = ""
        for command in shown {
            let permission = command.permission.map(JSONText.quote) ?? "null"
            reply += Reply.data("{\"command\":\(JSONText.quote(command.name)),\"usage\":\(JSONText.quote(command.usage)),\"permission\":\(permission),\"summary\":\(JSONText.quote(command.summary))}")
        }
        return Outcome(reply: reply + Reply.ok(shown.count == 1 ? "1 command" : "\(shown.count) commands"))
    }
}
