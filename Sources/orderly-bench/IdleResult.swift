import Foundation

/// What `orderly-bench idle` measured, as text for people or one JSON object for scripts.
struct IdleResult {
    let connections: Int
    let concurrency: Int
    let hold: Double
    let user: String
    let serverPid: Int32?
    var loggedIn = 0
    var served = 0
    var loginSeconds = 0.0
    var pingSeconds = 0.0
    var errors: [String: Int] = [:]
    /// The server's memory before the first connection, once all were logged in, after the hold.
    var before: ProcessMemory?
    var loggedInMemory: ProcessMemory?
    var afterHold: ProcessMemory?
    /// (connections logged in, VmRSS KiB) while the logins progress: how memory grows with them.
    var samples: [(Int, Int)] = []

    var succeeded: Bool { loggedIn == connections && served == connections }
    var errorCount: Int { errors.values.reduce(0, +) }

    /// What one more logged-in connection costs the server, from before the first to after the hold.
    var perConnectionKiB: Double? {
        guard let before, let after = afterHold ?? loggedInMemory, loggedIn > 0 else { return nil }
        return Double(after.rssKiB - before.rssKiB) / Double(loggedIn)
    }

    private static func mib(_ kib: Int) -> String { String(format: "%.1f MiB", Double(kib) / 1024) }

    func text() -> String {
        var out = "idle: \(loggedIn) of \(connections) connections logged in as \(user) in "
        out += String(format: "%.1f s (%d at a time, %.0f/s)", loginSeconds, concurrency,
                      loginSeconds > 0 ? Double(loggedIn) / loginSeconds : 0)
        out += String(format: ", held %.0f s\n", hold)
        if let serverPid, let before {
            out += "  server pid \(serverPid): RSS \(Self.mib(before.rssKiB)) before"
            if let loggedInMemory { out += ", \(Self.mib(loggedInMemory.rssKiB)) with all logged in" }
            if let afterHold { out += ", \(Self.mib(afterHold.rssKiB)) after the hold; peak (VmHWM) \(Self.mib(afterHold.hwmKiB))" }
            if let perConnectionKiB { out += String(format: "; %.1f KiB per connection", perConnectionKiB) }
            out += "\n"
            if !samples.isEmpty {
                out += "  RSS as they logged in: " + samples.map { "\($0.0) → \(Self.mib($0.1))" }.joined(separator: ", ") + "\n"
            }
        } else if let serverPid {
            out += "  server pid \(serverPid): /proc/\(serverPid)/status is not readable\n"
        }
        out += String(format: "  PING after the hold: %d of %d answered in %.2f s\n", served, connections, pingSeconds)
        for (code, count) in errors.sorted(by: { $0.key < $1.key }) {
            out += "  error \(code): \(count)\n"
        }
        return String(out.dropLast())
    }

    func json() -> String {
        var result: [String: Any] = [
            "scenario": "idle", "connections": connections, "concurrency": concurrency, "hold_seconds": hold,
            "logged_in": loggedIn, "served": served,
            "login_seconds": (loginSeconds * 100).rounded() / 100, "ping_seconds": (pingSeconds * 100).rounded() / 100,
            "errors": errors, "error_count": errorCount,
        ]
        if let serverPid {
            var server: [String: Any] = ["pid": Int(serverPid)]
            if let before { server["rss_kib_before"] = before.rssKiB }
            if let loggedInMemory { server["rss_kib_logged_in"] = loggedInMemory.rssKiB }
            if let afterHold {
                server["rss_kib_after_hold"] = afterHold.rssKiB
                server["hwm_kib"] = afterHold.hwmKiB
            }
            if let perConnectionKiB { server["per_connection_kib"] = (perConnectionKiB * 10).rounded() / 10 }
            server["samples"] = samples.map { ["connections": $0.0, "rss_kib": $0.1] }
            result["server"] = server
        }
        let data = try! JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
