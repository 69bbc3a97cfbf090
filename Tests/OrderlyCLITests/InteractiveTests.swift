import Foundation
import OrderlyTestSupport
import Testing

/// The interactive REPL on a real terminal: tmux gives `orderly` a pseudo-terminal, types into
/// it and shows what is on the screen. The event comes from the fake server because orderlyd
/// in this branch does not push events yet (admin.notify is being added on main).
@Suite struct InteractiveTests {
    static let hasTmux = FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux")

    @Test(.enabled(if: hasTmux, "needs tmux")) func anEventArrivingWhileTypingDoesNotGarbleTheLine() async throws {
        try await withFakeServer { server in
            let tmux = try await Tmux.start("env HOME=\(CLI.home) \(CLI.binary.path) --port \(server.port); echo \"[exit $?]\"; sleep 120")
            do {
                try await converse(tmux, server)
                try await tmux.kill()
            } catch {
                try? await tmux.kill()
                throw error
            }
        }
    }

    @Test(.enabled(if: hasTmux, "needs tmux")) func theSessionEndsWhenTheServerCloses() async throws {
        try await withFakeServer { server in
            let tmux = try await Tmux.start("env HOME=\(CLI.home) \(CLI.binary.path) --port \(server.port); echo \"[exit $?]\"; sleep 120")
            do {
                try await tmux.waitFor { screen, _ in screen.last == "orderly>" }
                try await tmux.send(literal: "PI")
                // Only once the REPL has echoed the keys: stopping earlier races the echo.
                try await tmux.waitFor { screen, _ in screen.last == "orderly> PI" }
                await server.stop()
                try await tmux.waitFor { screen, _ in
                    screen.suffix(3) == ["orderly> PI", "orderly: the server closed the connection", "[exit 2]"]
                }
                try await tmux.kill()
            } catch {
                try? await tmux.kill()
                throw error
            }
        }
    }

    private func converse(_ tmux: Tmux, _ server: FakeServer) async throws {
        let banner = "Connected to 127.0.0.1:\(server.port). Type help for the commands, quit to leave."
        let event = #">admin.notice {"message":"hello","from":"postgres"}"#
        try await tmux.waitFor { screen, _ in screen == [banner, "orderly>"] }

        // Type "PNG" and move the cursor back between P and N; then an event arrives.
        try await tmux.send(literal: "PNG")
        try await tmux.send(keys: "Left", "Left")
        try await tmux.waitFor { screen, cursor in screen.last == "orderly> PNG" && cursor == [10, 1] }
        server.push(event)
        // The event is above the prompt, the partial line is intact, the cursor where it was.
        try await tmux.waitFor { screen, cursor in screen == [banner, event, "orderly> PNG"] && cursor == [10, 2] }

        // Editing goes on where it was: the I lands between P and N.
        try await tmux.send(literal: "I")
        try await tmux.send(keys: "Enter")
        try await tmux.waitFor { screen, _ in screen == [banner, event, "orderly> PING", "+PONG", "orderly>"] }

        // History: Up recalls PING.
        try await tmux.send(keys: "Up")
        try await tmux.waitFor { screen, _ in screen.last == "orderly> PING" }
        try await tmux.send(keys: "Enter")
        try await tmux.waitFor { screen, _ in screen.count == 7 && screen.last == "orderly>" }

        try await tmux.send(literal: "quit")
        try await tmux.send(keys: "Enter")
        try await tmux.waitFor { screen, _ in screen.last == "[exit 0]" }
        let history = try String(contentsOfFile: CLI.home + "/.orderly_history", encoding: .utf8)
        #expect(history.hasSuffix("PING\nPING\nquit\n"))
    }
}

/// A tmux server of our own (its own socket) with one 100×20 window running `command`.
struct Tmux: Sendable {
    let socket = "orderly-test-" + UUID().uuidString

    static func start(_ command: String) async throws -> Tmux {
        let tmux = Tmux()
        try await tmux.run(["new-session", "-d", "-x", "100", "-y", "20", command])
        return tmux
    }

    /// The visible lines without trailing blanks and without the empty lines at the bottom,
    /// and the cursor as [column, row].
    func snapshot() async throws -> (screen: [String], cursor: [Int]) {
        var lines = try await run(["capture-pane", "-p"]).split(separator: "\n", omittingEmptySubsequences: false).map {
            String($0.reversed().drop { $0 == " " }.reversed())
        }
        while lines.last == "" { lines.removeLast() }
        let cursor = try await run(["display-message", "-p", "#{cursor_x} #{cursor_y}"]).split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        return (lines, cursor)
    }

    func send(literal text: String) async throws { try await run(["send-keys", "-l", text]) }
    func send(keys: String...) async throws { try await run(["send-keys"] + keys) }
    func kill() async throws { try await run(["kill-server"]) }

    /// Waits up to 10 seconds for the screen to satisfy `condition`; fails with what it shows.
    func waitFor(_ condition: ([String], [Int]) -> Bool, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        var last: (screen: [String], cursor: [Int]) = ([], [])
        for _ in 0..<200 {
            last = try await snapshot()
            if condition(last.screen, last.cursor) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("the screen never got there; cursor at \(last.cursor), it shows:\n\(last.screen.joined(separator: "\n"))", sourceLocation: sourceLocation)
        throw CancellationError()
    }

    @discardableResult
    private func run(_ arguments: [String]) async throws -> String {
        let socket = self.socket
        return try await onThread {
            // posix_spawn and waitpid, not Foundation's Process: the tmux server that
            // new-session starts inherits Process's exit-watching socket (and any output pipe),
            // so Process would wait for the server, not for the command. Output goes to a file.
            let path = TemporaryFiles.path(socket, suffix: ".out")
            defer { try? FileManager.default.removeItem(atPath: path) }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
            // Nothing else is inherited: the tmux server would otherwise keep the pipes of
            // other tests' processes open, and those tests would wait for it.
            closeInheritedDescriptors(&actions)
            let argv = ["/usr/bin/tmux", "-L", socket, "-f", "/dev/null"] + arguments
            var cArguments = argv.map { strdup($0) } + [nil]
            defer { cArguments.forEach { free($0) } }
            var pid: pid_t = 0
            // The test runner may ignore or block signals; tmux and the programs in its window
            // must get the defaults, or kill-server's SIGHUP would leave them running.
            var attributes = posix_spawnattr_t()
            posix_spawnattr_init(&attributes)
            defer { posix_spawnattr_destroy(&attributes) }
            var defaults = sigset_t(), empty = sigset_t()
            sigfillset(&defaults)
            sigemptyset(&empty)
            posix_spawnattr_setsigdefault(&attributes, &defaults)
            posix_spawnattr_setsigmask(&attributes, &empty)
            posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
            let spawned = posix_spawn(&pid, argv[0], &actions, &attributes, &cArguments, environ)
            guard spawned == 0 else { throw TmuxError(message: "posix_spawn failed: \(spawned)") }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            return (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        }
    }
}

/// glibc's posix_spawn_file_actions_addclosefrom_np (2.34+), looked up at run time because
/// Swift's Glibc module does not declare GNU extensions.
private func closeInheritedDescriptors(_ actions: inout posix_spawn_file_actions_t) {
    typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return }
    _ = unsafeBitCast(symbol, to: AddCloseFrom.self)(&actions, 3)
}

struct TmuxError: Error {
    let message: String
}
