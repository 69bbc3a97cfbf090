import CLibEdit
import Foundation
import NIOConcurrencyHelpers
import OrderlyClient

/// The interactive console: libedit line editing and history, with pushed events shown the
/// moment they arrive without garbling the line being typed.
///
/// libedit is not thread-safe and its readline interface is one global state, so everything
/// that touches it or the terminal runs on one thread of our own. That thread waits in poll()
/// on stdin (only while a command line is wanted) and on a wake-up pipe; other threads queue
/// work and write a byte to the pipe. Input uses the readline callback interface
/// (rl_callback_read_char reads one key without blocking the loop), so output can be written
/// between any two keystrokes: erase the prompt and the partial input, write the output, and
/// let libedit redraw prompt and input (rl_forced_update_display) with the cursor where it was.
///
/// The prompt is shown only while a line is wanted: while a command runs, its output and any
/// events are written plainly.
final class EditorConsole: Console, @unchecked Sendable {
    private enum Job {
        case readLine(prompt: String, CheckedContinuation<String?, Never>)
        case write(String)
        case remember(String)
        case password(prompt: String, CheckedContinuation<String?, Never>)
        case endInput
        case close(CheckedContinuation<Void, Never>)
    }

    /// Guards `jobs`, the only state shared between threads.
    private let lock = NIOLock()
    private var jobs: [Job] = []
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let historyPath: String?

    // The rest belongs to the editor thread.
    private var installed = false
    private var prompt = ""
    private var waiting: CheckedContinuation<String?, Never>?
    private var closed: CheckedContinuation<Void, Never>?
    private var inputEnded = false

    /// The console whose line handler libedit calls (a C callback carries no context).
    nonisolated(unsafe) private static var current: EditorConsole?

    /// Fails if stdin or stdout is not a terminal, or the pipe cannot be made.
    init?() {
        guard isatty(STDIN_FILENO) == 1, isatty(STDOUT_FILENO) == 1 else { return nil }
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return nil }
        for fd in fds {
            _ = fcntl(fd, F_SETFL, O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        wakeRead = fds[0]
        wakeWrite = fds[1]
        historyPath = ProcessInfo.processInfo.environment["HOME"].map { $0 + "/.orderly_history" }
        let thread = Thread { [self] in run() }
        thread.name = "orderly-editor"
        thread.start()
    }

    func readLine(prompt: String) async -> String? {
        await withCheckedContinuation { submit(.readLine(prompt: prompt, $0)) }
    }

    func write(_ text: String) { submit(.write(text)) }
    func interject(_ text: String) { submit(.write(text)) }
    func remember(_ line: String) { submit(.remember(line)) }

    func password(prompt: String) async -> String? {
        await withCheckedContinuation { submit(.password(prompt: prompt, $0)) }
    }

    func endInput() { submit(.endInput) }

    func close() async {
        await withCheckedContinuation { submit(.close($0)) }
    }

    private func submit(_ job: Job) {
        lock.withLock { jobs.append(job) }
        var byte: UInt8 = 1
        // A full pipe already holds a wake-up; nothing is lost when this write fails.
        _ = Glibc.write(wakeWrite, &byte, 1)
    }

    // MARK: the editor thread

    private func run() {
        EditorConsole.current = self
        orderly_rl_set_name()
        rl_initialize()
        stifle_history(1000)
        if let historyPath { read_history(historyPath) }
        while closed == nil {
            var fds = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            if waiting != nil { fds.append(pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)) }
            if poll(&fds, nfds_t(fds.count), -1) < 0 {
                if errno == EINTR { continue }  // SIGWINCH: libedit notes the new size itself
                // Cannot wait on stdin: end the input, and keep serving the queue (close).
                inputEnded = true
                finishLine(nil)
                usleep(10_000)
                continue
            }
            if fds[0].revents != 0 { drainWakeups(); runJobs() }
            if fds.count > 1, waiting != nil, fds[1].revents != 0 {
                if fds[1].revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0 {
                    // The terminal is gone (hang-up): libedit would read nothing and never
                    // call back, and this loop would spin.
                    inputEnded = true
                    finishLine(nil)
                } else if fds[1].revents & Int16(POLLIN) != 0 {
                    rl_callback_read_char()
                    if waiting == nil && installed {
                        // A line was entered. libedit has left raw mode and keeps the old text
                        // in its buffer; installing the handler again for the next line starts
                        // it empty (as Python's readline module does with libedit).
                        rl_callback_handler_remove()
                        installed = false
                    }
                }
            }
        }
        if installed {
            StandardStreams.out("\r\n")  // input ended at the prompt (connection closed): leave its line
            rl_callback_handler_remove()  // back to the terminal's normal mode
        }
        EditorConsole.current = nil
        closed?.resume()
    }

    private func drainWakeups() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while Glibc.read(wakeRead, &buffer, buffer.count) > 0 {}
    }

    private func runJobs() {
        let batch = lock.withLock { () -> [Job] in
            defer { jobs.removeAll() }
            return jobs
        }
        for job in batch {
            switch job {
            case .readLine(let newPrompt, let continuation):
                if inputEnded {
                    continuation.resume(returning: nil)
                } else {
                    waiting = continuation
                    show(prompt: newPrompt)
                }
            case .endInput:
                inputEnded = true
                finishLine(nil)
            case .write(let text):
                writeAbovePrompt(text)
            case .remember(let line):
                add_history(line)
                if let historyPath {
                    write_history(historyPath)
                    chmod(historyPath, 0o600)  // commands may name customers and orders: private
                }
            case .password(let text, let continuation):
                continuation.resume(returning: askPassword(text))
            case .close(let continuation):
                closed = continuation
            }
        }
    }

    /// Shows the prompt and starts editing a new, empty line.
    private func show(prompt newPrompt: String) {
        if installed {
            eraseInput()
            rl_callback_handler_remove()
        }
        prompt = newPrompt
        rl_callback_handler_install(prompt, { line in EditorConsole.current?.lineEntered(line) })
        installed = true
    }

    /// Called by libedit (inside rl_callback_read_char) with a complete line, or nil for Ctrl-D
    /// on an empty line. The line was allocated with malloc and is ours to free.
    private func lineEntered(_ line: UnsafeMutablePointer<CChar>?) {
        guard let line else {
            StandardStreams.out("\n")  // Ctrl-D: end the prompt's line before the shell's
            return finishLine(nil)
        }
        let text = String(cString: line)
        free(line)
        finishLine(text)
    }

    private func finishLine(_ line: String?) {
        // No more input is read until the next readLine: keys typed meanwhile wait in the tty.
        let continuation = waiting
        waiting = nil
        continuation?.resume(returning: line)
    }

    /// Writes output where the prompt is, then redraws the prompt and the partial input below it.
    private func writeAbovePrompt(_ text: String) {
        guard installed else { return StandardStreams.out(text) }
        eraseInput()
        // libedit keeps the terminal in raw mode, where "\n" does not return the carriage.
        StandardStreams.out(text.replacingOccurrences(of: "\n", with: "\r\n"))
        rl_forced_update_display()
    }

    /// Moves to the start of the prompt and clears from there to the end of the screen. The
    /// prompt and input may span several rows when longer than the terminal is wide.
    private func eraseInput() {
        var rows: Int32 = 0, columns: Int32 = 0
        rl_get_screen_size(&rows, &columns)
        let width = max(Int(columns), 1)
        let cursorRow = (TerminalText.width(prompt) + Int(orderly_rl_point())) / width
        StandardStreams.out("\r" + (cursorRow > 0 ? "\u{1B}[\(cursorRow)A" : "") + "\u{1B}[J")
    }

    /// Asked between commands, when libedit is not editing a line and the terminal is in its
    /// normal mode, as getpass needs.
    private func askPassword(_ text: String) -> String? {
        if installed {
            eraseInput()
            rl_callback_handler_remove()
            installed = false
        }
        return getpass(text).map { String(cString: $0) }
    }
}
