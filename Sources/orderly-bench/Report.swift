import Foundation
import Histogram

/// The result of one run, as text for people or one JSON object for scripts.
struct Report {
    let scenario: String
    let connections: Int
    let seconds: Double
    let tally: Tally

    struct Figures {
        var requests: UInt64
        var throughput: Double
        var p50, p90, p99, max: Double
    }

    func figures(_ histogram: Histogram<UInt64>) -> Figures {
        let ms = { (micros: UInt64) in Double(micros) / 1000 }
        return Figures(
            requests: histogram.totalCount,
            throughput: Double(histogram.totalCount) / seconds,
            p50: ms(histogram.valueAtPercentile(50)), p90: ms(histogram.valueAtPercentile(90)),
            p99: ms(histogram.valueAtPercentile(99)), max: ms(histogram.max))
    }

    var errorCount: Int { tally.errors.values.reduce(0, +) }

    func text() -> String {
        let total = figures(tally.all)
        func fmt(_ value: Double) -> String { String(format: "%.2f", value) }
        var out = "\(scenario): \(connections) connections, \(fmt(seconds)) s measured\n"
        out += "  requests \(total.requests)  throughput \(String(format: "%.0f", total.throughput))/s  "
        out += "errors \(errorCount)\n"
        out += "  latency ms  p50 \(fmt(total.p50))  p90 \(fmt(total.p90))  p99 \(fmt(total.p99))  max \(fmt(total.max))\n"
        if tally.histograms.count > 1 {
            for (operation, histogram) in tally.histograms.sorted(by: { $0.key < $1.key }) {
                let f = figures(histogram)
                out += "  \(operation.padding(toLength: 15, withPad: " ", startingAt: 0)) \(String(format: "%8.0f", f.throughput))/s"
                out += "  p50 \(fmt(f.p50))  p99 \(fmt(f.p99))  max \(fmt(f.max))\n"
            }
        }
        for (code, count) in tally.errors.sorted(by: { $0.key < $1.key }) {
            out += "  error \(code): \(count)\n"
        }
        if !tally.counters.isEmpty {
            out += "  " + tally.counters.sorted(by: { $0.key < $1.key }).map { "\($0.key) \($0.value)" }.joined(separator: "  ") + "\n"
        }
        return String(out.dropLast())
    }

    func json() -> String {
        func object(_ f: Figures) -> [String: Any] {
            ["requests": f.requests, "throughput": (f.throughput * 10).rounded() / 10,
             "p50_ms": f.p50, "p90_ms": f.p90, "p99_ms": f.p99, "max_ms": f.max]
        }
        var result = object(figures(tally.all))
        result["scenario"] = scenario
        result["connections"] = connections
        result["seconds"] = seconds
        result["errors"] = tally.errors
        result["error_count"] = errorCount
        if !tally.counters.isEmpty { result["counters"] = tally.counters }
        result["operations"] = tally.histograms.mapValues { object(figures($0)) }
        let data = try! JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
