import ArgumentParser
import Foundation
import OrderlyClient

/// The command-line client. This first version logs in and runs one command; the interactive
/// REPL and table output come later.
@main
struct Orderly: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orderly",
        abstract: "Run one command against an Orderly server and print the reply.",
        discussion: "Example: ORDERLY_PASSWORD=sales_rep-demo orderly --user sales_rep WHOAMI")

    @Option(help: "Server host.") var host = "127.0.0.1"
    @Option(help: "Server port.") var port = 7400
    @Option(help: "Username; the password comes from ORDERLY_PASSWORD or a prompt.") var user: String?
    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments, e.g. WHOAMI.") var command: [String] = []

    func run() async throws {
        let connection = try await OrderlyConnection.connect(host: host, port: port)
        let response = try await exchange(on: connection)
        await connection.close()
        if let response { try finish(response) }
    }

    /// Logs in if asked, then runs the command; returns the response to print (a failed AUTH's,
    /// or the command's), or nil when there was nothing to run.
    private func exchange(on connection: OrderlyConnection) async throws -> Response? {
        if let user {
            let password = ProcessInfo.processInfo.environment["ORDERLY_PASSWORD"] ?? Orderly.promptPassword()
            let auth = try await connection.authenticate(username: user, password: password)
            guard auth.isSuccess else { return auth }
        }
        guard !command.isEmpty else { return nil }
        return try await connection.request(command.joined(separator: " "))
    }

    private func finish(_ response: Response) throws {
        for line in response.data { print(line) }
        FileHandle.standardError.write(Data((response.final + "\n").utf8))
        if !response.isSuccess { throw ExitCode(1) }
    }

    /// Reads a password without echoing it.
    static func promptPassword() -> String {
        guard let pointer = getpass("Password: ") else { return "" }
        return String(cString: pointer)
    }
}
