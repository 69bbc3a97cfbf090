import NIOConcurrencyHelpers
import OrderlyClient
import OrderlyProtocol

/// The read-eval-print loop: reads a command line, sends it, prints the reply; pushed events
/// are printed as they arrive. `quit`, `exit` or end of input leave.
struct REPL {
    let connection: OrderlyConnection
    let console: any Console
    let format: ReplyFormat
    /// Who the session is logged in as, for the prompt.
    var user: String?

    /// Runs until the user leaves. Throws when the connection fails.
    mutating func run() async throws {
        let events = connection.events
        let console = self.console, format = self.format
        // The event stream ends when the connection closes: then stop waiting for input too,
        // rather than leave the user typing into a dead session.
        let connectionClosed = NIOLockedValueBox(false)
        let eventPrinter = Task {
            for await event in events { console.interject(format.event(event)) }
            connectionClosed.withLockedValue { $0 = true }
            console.endInput()
        }
        defer { eventPrinter.cancel() }
        while true {
            guard let line = await console.readLine(prompt: prompt) else {
                if connectionClosed.withLockedValue({ $0 }) { throw ClientError.closed }
                return
            }
            let command = line.trimmingWhitespace()
            if command.isEmpty { continue }
            if ["quit", "exit"].contains(command.lowercased()) {
                console.remember(command)
                _ = try? await connection.request("QUIT")
                return
            }
            let response: Response
            if let auth = try? Request(parsing: command), auth.commandWords.first == "AUTH" {
                response = try await authenticate(command, auth.positionalValues(skipping: 1))
            } else {
                console.remember(command)
                response = try await connection.request(command)
            }
            console.write(format.rows(response) + format.final(response))
        }
    }

    var prompt: String {
        "orderly" + (user.map { " " + TerminalText.sanitize($0) } ?? "") + "> "
    }

    /// AUTH typed at the prompt. `AUTH name` asks for the password without echo; a line that
    /// holds a password is kept out of the history file.
    private mutating func authenticate(_ command: String, _ arguments: [Value]) async throws -> Response {
        let response: Response
        if arguments.count == 1, let password = await console.password(prompt: "Password for \(arguments[0].text): ") {
            console.remember(command)
            response = try await connection.authenticate(username: arguments[0].text, password: password)
        } else {
            response = try await connection.request(command)
        }
        if response.isSuccess, let name = arguments.first?.text { user = name }
        return response
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let isBlank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let start = firstIndex(where: { !isBlank($0) }), let end = lastIndex(where: { !isBlank($0) }) else { return "" }
        return String(self[start...end])
    }
}
