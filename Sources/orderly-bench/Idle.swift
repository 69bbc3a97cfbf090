import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import OrderlyClient
import SystemLimits

/// `idle`: what holding many logged-in, silent clients costs the server. Subscribers waiting for
/// events spend most of their life like this, so the memory each one takes decides how many
/// one orderlyd can hold.
struct Idle: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Open many connections, log each in, hold them idle, read the server's memory, PING each once.",
        discussion: """
            Logins run --concurrency at a time (AUTH is a bcrypt check on the server). With \
            --server-pid the server's VmRSS and VmHWM are read from /proc before the first \
            connection, as the logins progress, once all are logged in and after the hold. At \
            the end every connection sends PING: each must still be served. orderlyd must allow \
            the connections (--max-connections) and keep them for the hold (--idle-timeout). \
            Exits 1 unless every connection logged in and answered its PING.
            """)

    @Option(help: "Server host.") var host = "127.0.0.1"
    @Option(help: "Server port.") var port = 7400
    @Option(help: "Connections to open and hold.") var connections = 5000
    @Option(help: "Logins in progress at once.") var concurrency = 64
    @Option(help: "Seconds to hold the connections idle once all are logged in.") var hold: Double = 10
    @Option(help: "Log in as this user.") var user = "sales_rep"
    @Option(help: "The user's password (default: <user>-demo, the demo password).") var password: String?
    @Option(help: "The server's process id, to read its memory from /proc/<pid>/status (same machine).")
    var serverPid: Int32?
    @Flag(help: "Print the result as one JSON object.") var json = false

    func validate() throws {
        guard connections >= 1, concurrency >= 1 else { throw ValidationError("--connections and --concurrency must be at least 1") }
        guard hold >= 0 else { throw ValidationError("--hold must not be negative") }
    }

    func run() async throws {
        // One descriptor per connection, plus the few the process needs for itself.
        let files = FileLimit.raise()
        guard files < 0 || files >= connections + 64 else {
            throw ValidationError("the open-file limit is \(files), too low for \(connections) connections (ulimit -n)")
        }
        let result = try await IdleRun(
            host: host, port: port, connections: connections, concurrency: concurrency, hold: hold,
            login: (user, password ?? "\(user)-demo"), serverPid: serverPid
        ).run()
        print(json ? result.json() : result.text())
        if !result.succeeded { throw ExitCode(1) }
    }
}

/// One idle run. Every connection is a task of its own that logs in, then waits for the end
/// of the hold, PINGs, and closes; the run starts a new login whenever one finishes, so that
/// at most `concurrency` are in progress.
struct IdleRun {
    let host: String
    let port: Int
    let connections: Int
    let concurrency: Int
    let hold: Double
    let login: (String, String)
    let serverPid: Int32?

    private enum Login: Sendable {
        case done
        case failed(String)
    }

    private enum End: Sendable {
        /// Failed before or at AUTH: already counted by its login event.
        case neverLoggedIn
        case served
        case failed(String)
    }

    func run() async throws -> IdleResult {
        var result = IdleResult(connections: connections, concurrency: concurrency, hold: hold, user: login.0, serverPid: serverPid)
        result.before = memory()
        let sampleEvery = max(1, connections / 5)
        let (events, loggedIn) = AsyncStream.makeStream(of: Login.self)
        // One future many tasks wait on: fulfilled when the hold is over.
        let holdOver = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: Void.self)
        let (host, port, login) = (host, port, login)
        let started = Runner.now()

        let ends = await withTaskGroup(of: End.self) { group in
            func open() {
                group.addTask {
                    let connection: OrderlyConnection
                    do {
                        connection = try await OrderlyConnection.connect(host: host, port: port, timeout: .seconds(60))
                    } catch {
                        loggedIn.yield(.failed("CONNECTION"))
                        return .neverLoggedIn
                    }
                    // A server that is full greets with its refusal (-BUSY) and closes.
                    if connection.greeting.hasPrefix("-") {
                        loggedIn.yield(.failed(String(connection.greeting.dropFirst().prefix { $0 != " " })))
                        await connection.close()
                        return .neverLoggedIn
                    }
                    do {
                        let auth = try await connection.authenticate(username: login.0, password: login.1)
                        guard auth.isSuccess else {
                            loggedIn.yield(.failed("AUTH:" + (auth.errorCode ?? "?")))
                            await connection.close()
                            return .neverLoggedIn
                        }
                    } catch {
                        loggedIn.yield(.failed("CONNECTION"))
                        await connection.close()
                        return .neverLoggedIn
                    }
                    loggedIn.yield(.done)
                    try? await holdOver.futureResult.get()
                    let end: End
                    do {
                        let pong = try await connection.request("PING")
                        end = pong.isSuccess ? .served : .failed("PING:" + (pong.errorCode ?? "?"))
                    } catch {
                        // The server closed it while it was idle.
                        end = .failed("CLOSED")
                    }
                    await connection.close()
                    return end
                }
            }

            var opened = 0
            while opened < min(concurrency, connections) { open(); opened += 1 }
            var finished = 0
            for await event in events {
                finished += 1
                switch event {
                case .done:
                    result.loggedIn += 1
                    if result.loggedIn % sampleEvery == 0, let rss = memory()?.rssKiB {
                        result.samples.append((result.loggedIn, rss))
                    }
                case .failed(let code):
                    result.errors[code, default: 0] += 1
                }
                if opened < connections { open(); opened += 1 }
                if finished == connections { break }
            }
            result.loginSeconds = Double(Runner.now() - started) / 1e9
            result.loggedInMemory = memory()
            try? await Task.sleep(nanoseconds: UInt64(hold * 1e9))
            result.afterHold = memory()

            let pinged = Runner.now()
            holdOver.succeed(())
            var ends: [End] = []
            for await end in group { ends.append(end) }
            result.pingSeconds = Double(Runner.now() - pinged) / 1e9
            return ends
        }
        for end in ends {
            switch end {
            case .neverLoggedIn: break
            case .served: result.served += 1
            case .failed(let code): result.errors[code, default: 0] += 1
            }
        }
        return result
    }

    private func memory() -> ProcessMemory? { serverPid.flatMap(ProcessMemory.read(pid:)) }
}
