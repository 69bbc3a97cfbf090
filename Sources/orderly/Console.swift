/// Where the REPL reads commands and writes replies: a line editor on a terminal, or plain
/// stdin/stdout for scripts.
protocol Console: Sendable {
    /// The next command line, without its newline; nil at end of input (Ctrl-D, EOF).
    func readLine(prompt: String) async -> String?
    /// Output that answers a command (rows, final line).
    func write(_ text: String)
    /// Output that arrives on its own (pushed events), possibly while a line is being typed.
    func interject(_ text: String)
    /// Remembers a line for history recall (never called for lines holding a password).
    func remember(_ line: String)
    /// Asks for a password without echo.
    func password(prompt: String) async -> String?
    /// Restores the terminal.
    func close() async
}

/// Commands from stdin line by line, output to stdout; no prompt, no editing. For pipes and
/// scripts: `printf 'PING\nWHOAMI\n' | orderly --user alice`.
struct PlainConsole: Console {
    func readLine(prompt: String) async -> String? {
        await onOwnThread { Swift.readLine(strippingNewline: true) }
    }

    func write(_ text: String) { StandardStreams.out(text) }
    func interject(_ text: String) { StandardStreams.out(text) }
    func remember(_ line: String) {}
    /// Without a terminal there is no one to ask.
    func password(prompt: String) async -> String? { nil }
    func close() async {}
}
