import ArgumentParser
import Foundation
import OrderlyClient

/// `orderly-bench authflood`: connections that send nothing but AUTH with wrong passwords, as
/// an attacker would, for a fixed time. Run beside another scenario to see what a flood of
/// password checks costs logged-in users (`make bench` does, for `show`).
struct AuthFlood: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "authflood",
        abstract: "AUTH with wrong passwords from many connections (each its own username).",
        discussion: """
            Every reply counts: AUTH_FAILED (a password was checked), LOCKED (throttled before \
            any check), BUSY (no turn at a password check in time). Start the server with high \
            --auth-max-* limits to make every AUTH reach bcrypt.
            """)
    @Option(help: "Server host.") var host = "127.0.0.1"
    @Option(help: "Server port.") var port = 7400
    @Option(help: "Concurrent connections.") var connections = 200
    @Option(help: "Seconds to keep hammering.") var duration: Double = 10
    @Flag(help: "Print the result as one JSON object.") var json = false

    func run() async throws {
        let deadline = Date().addingTimeInterval(duration)
        let counts = try await withThrowingTaskGroup(of: [String: Int].self) { group in
            for index in 0..<connections {
                group.addTask { [host, port] in
                    var counts: [String: Int] = [:]
                    guard let connection = try? await OrderlyConnection.connect(host: host, port: port) else {
                        return ["CONNECTION": 1]
                    }
                    while Date() < deadline {
                        guard let reply = try? await connection.request("AUTH flood\(index) wrong-password") else {
                            counts["CONNECTION", default: 0] += 1
                            break
                        }
                        counts[reply.errorCode ?? "OK", default: 0] += 1
                    }
                    await connection.close()
                    return counts
                }
            }
            var total: [String: Int] = [:]
            for try await counts in group { total.merge(counts, uniquingKeysWith: +) }
            return total
        }
        let replies = counts.values.reduce(0, +)
        if json {
            let data = try JSONSerialization.data(withJSONObject: ["scenario": "authflood", "connections": connections,
                                                                   "seconds": duration, "replies": replies, "by_code": counts],
                                                  options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("authflood: \(connections) connections, \(duration) s: \(replies) replies " +
                  counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: "  "))
        }
    }
}
