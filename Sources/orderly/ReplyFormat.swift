import OrderlyClient

/// How replies and events look on the terminal: a table of the data lines, or with `--json`
/// the data lines exactly as received (one JSON value per line, for jq and scripts).
struct ReplyFormat: Sendable {
    let json: Bool

    /// The data lines of a reply.
    func rows(_ response: Response) -> String {
        if json { return response.data.map { $0 + "\n" }.joined() }
        return TableFormatter.format(response.data)
    }

    /// The final `+`/`-` line.
    func final(_ response: Response) -> String {
        TerminalText.sanitize(response.final) + "\n"
    }

    /// A pushed event (the `>` line without its `>`), shown as the server sent it.
    func event(_ event: String) -> String {
        ">" + (json ? event : TerminalText.sanitize(event)) + "\n"
    }
}
