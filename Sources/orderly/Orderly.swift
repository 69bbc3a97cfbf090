import ArgumentParser
import Foundation
import OrderlyClient

/// The command-line client: runs one command and prints the reply, or without a command an
/// interactive session (REPL).
@main
struct Orderly: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orderly",
        abstract: "Talk to an Orderly server: run one command, or start an interactive session.",
        discussion: """
            With a command, prints its data lines as a table (raw JSON lines with --json, CSV with \
            --csv; a REPORT table with a bar chart of its main measure) and the \
            final +OK/-ERROR line on standard error. Exit status: 0 success, 1 error reply, 2 \
            connection failure. Without a command, starts an interactive session (commands are \
            read from standard input when it is not a terminal).

            Example: ORDERLY_PASSWORD=sales_rep-demo orderly --user sales_rep WHOAMI

            orderly --user logistics tracking import events.csv sends one TRACKING EVENT per line of \
            a CSV file whose header names the arguments (carrier,event_id,tracking_no,code,at,…), \
            then prints how many were applied, replays and rejected (with line numbers); exit \
            status 1 when a line was rejected.
            """)

    @Option(help: "Server host.") var host = "127.0.0.1"
    @Option(help: "Server port.") var port = 7400
    @Option(help: "Log in as this user; the password comes from ORDERLY_PASSWORD or a prompt.") var user: String?
    @Flag(help: "Connect with TLS (the server's TLS port). Verifies the certificate against the system's trust store.") var tls = false
    @Option(name: .customLong("tls-ca"), help: ArgumentHelp("Verify the server's certificate against the CA certificates in this PEM file instead (implies --tls).", valueName: "file"))
    var tlsCA: String?
    @Flag(name: .customLong("tls-insecure"), help: "Do not verify the server's certificate (implies --tls). For testing only: anyone in the middle can read and change the traffic.")
    var tlsInsecure = false
    @Option(name: .customLong("tls-server-name"), help: ArgumentHelp("The name the server's certificate must carry, if not --host.", valueName: "name"))
    var tlsServerName: String?
    @Flag(help: "Print data lines as raw JSON, one per line, instead of a table.") var json = false
    @Flag(help: "Print data lines as CSV (a header, then one record per line), instead of a table.") var csv = false
    @Argument(parsing: .remaining, help: "The command and its arguments, e.g. WHOAMI. None: interactive session.")
    var command: [String] = []

    func validate() throws {
        if tlsCA != nil && tlsInsecure { throw ValidationError("--tls-ca and --tls-insecure exclude each other") }
        if json && csv { throw ValidationError("--json and --csv exclude each other") }
    }

    var tlsOptions: TLSOptions? {
        guard tls || tlsCA != nil || tlsInsecure || tlsServerName != nil else { return nil }
        let trust: TLSOptions.Trust = tlsInsecure ? .insecure : tlsCA.map { .pemFile($0) } ?? .system
        return TLSOptions(trust: trust, serverName: tlsServerName)
    }

    func run() async throws {
        let format = ReplyFormat(json: json, csv: csv)
        let interactive = command.isEmpty
        let connection: OrderlyConnection
        do {
            connection = try await OrderlyConnection.connect(
                host: host, port: port, tls: tlsOptions, events: interactive ? .stream : .inResponse)
        } catch {
            throw fail("cannot connect to \(host):\(port): \(ConnectionFailure.describe(error))")
        }
        do {
            if let user {
                let auth = try await connection.authenticate(username: user, password: await Password.obtain(for: user))
                guard auth.isSuccess else {
                    StandardStreams.err(format.final(auth))
                    await connection.close()
                    throw ExitCode(1)
                }
            }
            if interactive {
                try await runInteractive(connection, format: format)
            } else if command.count == 3, command[0].lowercased() == "tracking", command[1].lowercased() == "import" {
                try await runTrackingImport(connection, path: command[2])
            } else {
                try await runOnce(connection, format: format)
            }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            await connection.close()
            throw fail(ConnectionFailure.describe(error))
        }
    }

    /// One command: rows to stdout, the final line to stderr, exit 1 on an error reply. A report
    /// (`REPORT name …`) shown as a table gets a bar chart of its main measure, which `REPORT`
    /// alone names.
    private func runOnce(_ connection: OrderlyConnection, format: ReplyFormat) async throws {
        var bars: TableFormatter.Bars?
        if !json, !csv, command.count >= 2, command[0].uppercased() == "REPORT", !command[1].contains("=") {
            let listing = try await connection.request("REPORT")
            for line in listing.data {
                guard case .object(let members)? = JSONValue(parsing: line),
                      members.contains(where: { $0.key == "report" && $0.value == .string(command[1].lowercased()) }),
                      case .string(let measure)? = members.first(where: { $0.key == "measure" })?.value else { continue }
                bars = TableFormatter.Bars(measure: measure)
            }
        }
        let response = try await connection.request(RequestLine.join(command))
        await connection.close()
        StandardStreams.out(format.rows(response, bars: bars))
        StandardStreams.err(format.final(response))
        if !response.isSuccess { throw ExitCode(1) }
    }

    /// `orderly tracking import FILE.csv`: the summary to stdout, exit 1 when a line was rejected.
    private func runTrackingImport(_ connection: OrderlyConnection, path: String) async throws {
        let summary: TrackingImport.Summary
        do {
            summary = try await TrackingImport(connection: connection, path: path).run(progress: isatty(STDERR_FILENO) == 1)
        } catch let failure as ImportFailure {
            await connection.close()
            StandardStreams.err("orderly: \(failure.description)\n")
            throw ExitCode(1)
        } catch let malformed as CSVReader.Malformed {
            await connection.close()
            StandardStreams.err("orderly: \(path): \(malformed.description)\n")
            throw ExitCode(1)
        }
        await connection.close()
        StandardStreams.out(TrackingImport.report(summary, path: path))
        if !summary.rejected.isEmpty { throw ExitCode(1) }
    }

    private func runInteractive(_ connection: OrderlyConnection, format: ReplyFormat) async throws {
        let console: any Console = EditorConsole() ?? PlainConsole()
        if console is EditorConsole {
            console.write("Connected to \(host):\(port)\(tlsOptions == nil ? "" : " (TLS)"). Type help for the commands, quit to leave.\n")
        }
        var repl = REPL(connection: connection, console: console, format: format, user: user)
        do {
            try await repl.run()
        } catch {
            await console.close()
            throw error
        }
        await console.close()
        await connection.close()
    }

    /// Prints `orderly: message` to stderr and returns the exit code for a connection failure.
    private func fail(_ message: String) -> ExitCode {
        StandardStreams.err("orderly: \(message)\n")
        return ExitCode(2)
    }
}
