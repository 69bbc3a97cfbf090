import Foundation
import Histogram
import NIOConcurrencyHelpers
import OrderlyProtocol

/// Counters and latency histograms behind `STATS`: how much each command is used, how it fails,
/// and how long it takes.
final class ServerMetrics: Sendable {
    private struct CommandStats {
        var requests = 0
        var errors: [String: Int] = [:]
        /// Microseconds, 1 µs to 10 min, three significant digits.
        var latency = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
    }

    private struct State {
        var commands: [String: CommandStats] = [:]
        var errors: [String: Int] = [:]
        var connectionsAccepted = 0
        var connectionsRefused = 0
        var eventsPushed = 0
    }

    private let state = NIOLockedValueBox(State())
    private let started = Date()

    func connectionAccepted() { state.withLockedValue { $0.connectionsAccepted += 1 } }
    func connectionRefused() { state.withLockedValue { $0.connectionsRefused += 1 } }
    func eventsPushed(_ count: Int) { state.withLockedValue { $0.eventsPushed += count } }

    /// Records one request. `command` is the table's name for it, or "(invalid)" for a line that
    /// named no command; `error` the code it failed with.
    func record(command: String, error: ErrorCode?, microseconds: UInt64) {
        state.withLockedValue { state in
            // In place: copying the entry out would copy its histogram on every request.
            state.commands[command, default: CommandStats()].requests += 1
            _ = state.commands[command, default: CommandStats()].latency.record(max(1, min(microseconds, 600_000_000)))
            if let error {
                state.commands[command, default: CommandStats()].errors[error.rawValue, default: 0] += 1
                state.errors[error.rawValue, default: 0] += 1
            }
        }
    }

    /// The `STATS` data lines: the server as a whole, then one line per command.
    func report(openConnections: Int, maxConnections: Int, poolSize: Int, poolInUse: Int, poolWaiting: Int) -> [String] {
        state.withLockedValue { state in
            let requests = state.commands.values.reduce(0) { $0 + $1.requests }
            var lines = [
                "{\"uptime_seconds\":\(Int(Date().timeIntervalSince(started))),"
                + "\"connections\":{\"open\":\(openConnections),\"max\":\(maxConnections),\"accepted\":\(state.connectionsAccepted),\"refused\":\(state.connectionsRefused)},"
                + "\"requests\":\(requests),\"errors\":\(Self.object(state.errors)),"
                + "\"pool\":{\"size\":\(poolSize),\"in_use\":\(poolInUse),\"waiting\":\(poolWaiting)},"
                + "\"events_pushed\":\(state.eventsPushed)}"
            ]
            for (name, stats) in state.commands.sorted(by: { $0.key < $1.key }) {
                lines.append("{\"command\":\(JSONText.quote(name)),\"requests\":\(stats.requests),\"errors\":\(Self.object(stats.errors)),"
                    + "\"p50_ms\":\(Self.milliseconds(stats.latency.valueAtPercentile(50))),"
                    + "\"p99_ms\":\(Self.milliseconds(stats.latency.valueAtPercentile(99))),"
                    + "\"max_ms\":\(Self.milliseconds(stats.latency.max))}")
            }
            return lines
        }
    }

    private static func object(_ counts: [String: Int]) -> String {
        "{" + counts.sorted { $0.key < $1.key }.map { "\(JSONText.quote($0.key)):\($0.value)" }.joined(separator: ",") + "}"
    }

    private static func milliseconds(_ microseconds: UInt64) -> String {
        String(format: "%.3f", Double(microseconds) / 1000)
    }
}
