import Foundation
import NIOConcurrencyHelpers

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
    /// Makes the pending and every later `readLine` return nil: the connection is gone.
    func endInput()
    /// Restores the terminal.
    func close() async
}

/// Commands from stdin line by line, output to stdout; no prompt, no editing. For pipes and
/// scripts: `printf 'PING\nWHOAMI\n' | orderly --user alice`.
final class PlainConsole: Console, Sendable {
    private struct State {
        var ended = false
        var waiting: CheckedContinuation<String?, Never>?
    }
    private let state = NIOLockedValueBox(State())

    func readLine(prompt: String) async -> String? {
        await withCheckedContinuation { continuation in
            let ended = state.withLockedValue { state in
                if !state.ended { state.waiting = continuation }
                return state.ended
            }
            if ended { return continuation.resume(returning: nil) }
            // A blocking read, on a thread of its own; endInput may answer first.
            Thread { [self] in deliver(Swift.readLine(strippingNewline: true)) }.start()
        }
    }

    private func deliver(_ line: String?) {
        let continuation = state.withLockedValue { state in
            defer { state.waiting = nil }
            return state.waiting
        }
        continuation?.resume(returning: line)
    }

    func endInput() {
        state.withLockedValue { $0.ended = true }
        deliver(nil)
    }

    func write(_ text: String) { StandardStreams.out(text) }
    func interject(_ text: String) { StandardStreams.out(text) }
    func remember(_ line: String) {}
    /// Without a terminal there is no one to ask.
    func password(prompt: String) async -> String? { nil }
    func close() async {}
}
