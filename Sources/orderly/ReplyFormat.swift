import OrderlyClient

/// How replies and events look on the terminal: a table of the data lines, or with `--json`
/// the data lines exactly as received (one JSON value per line, for jq and scripts), or with
/// `--csv` as CSV for spreadsheets.
struct ReplyFormat: Sendable {
    let json: Bool
    var csv = false

    /// The data lines of a reply; a table with `bars` (REPORT's main measure) draws them too.
    func rows(_ response: Response, bars: TableFormatter.Bars? = nil) -> String {
        if json { return response.data.map { $0 + "\n" }.joined() }
        if csv { return CSVFormatter.format(response.data) }
        return TableFormatter.format(response.data, bars: bars)
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
