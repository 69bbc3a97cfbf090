import Foundation
import Histogram
import NIOCore
import LoopExecutor
import NIOPosix
import OrderlyClient

/// What one connection measured: latencies per operation (µs) and failed replies by code.
struct Tally: Sendable {
    var histograms: [String: Histogram<UInt64>] = [:]
    var errors: [String: Int] = [:]
    /// Named counts besides requests and errors (`create --verify`: acknowledged, retries, …).
    var counters: [String: Int] = [:]
    /// Requests answered (success or error) inside the measured window.
    var requests = 0

    static func newHistogram() -> Histogram<UInt64> {
        Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
    }

    /// In place: a copy of the histogram taken out of the dictionary and stored back made its
    /// counts array (tens of kB) be copied at every request, which cost this process more CPU
    /// per request than anything else it does, on the cores the server and PostgreSQL share.
    mutating func record(_ operation: String, micros: UInt64, count: Int = 1) {
        _ = histograms[operation, default: Self.newHistogram()].record(max(micros, 1), count: UInt64(count))
        requests += count
    }

    mutating func fail(_ code: String, count: Int = 1) {
        errors[code, default: 0] += count
    }

    mutating func merge(_ other: Tally) {
        for (operation, histogram) in other.histograms {
            histograms[operation, default: Self.newHistogram()].add(histogram)
        }
        for (code, count) in other.errors { errors[code, default: 0] += count }
        for (name, count) in other.counters { counters[name, default: 0] += count }
        requests += other.requests
    }

    var all: Histogram<UInt64> {
        var total = Self.newHistogram()
        for histogram in histograms.values { total.add(histogram) }
        return total
    }
}

/// Runs a workload: one task per connection, each with one request in flight, for warm-up plus
/// duration; only what starts after the warm-up is measured.
struct Runner {
    let options: LoadOptions
    let workload: Workload
    let credentials: [(String, String)]
    var approvers: [(String, String)] = []
    var approverEvery = 0
    /// `create --verify`: where acknowledged orders go; connections retry lost requests.
    var ackLog: AckLog?

    init(options: LoadOptions, workload: Workload, credentials: [(String, String)],
         approvers: [(String, String)] = [], approverEvery: Int = 0, ackLog: AckLog? = nil) {
        self.ackLog = ackLog
        self.options = options
        self.workload = workload
        self.credentials = credentials
        self.approvers = approvers
        self.approverEvery = approverEvery
    }

    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    func runAndReport(name: String) async throws {
        let start = Self.now()
        let measureFrom = start + UInt64(options.warmup * 1e9)
        let measureUntil = measureFrom + UInt64(options.duration * 1e9)
        let logins: [(login: (String, String)?, approver: Bool)] = (0..<options.connections).map { index in
            let isApprover = approverEvery > 0 && !approvers.isEmpty && index % approverEvery == approverEvery - 1
            return (isApprover ? approvers[(index / approverEvery) % approvers.count]
                               : (credentials.isEmpty ? nil : credentials[index % credentials.count]), isApprover)
        }
        // `create --verify` connections retry through crashes on a clock of their own.
        let verifies: (((String, String)?)) -> Bool = { login in
            if ackLog != nil, case .create = workload.kind, login != nil { return true } else { return false }
        }
        // Logins are deliberately slow password checks: the clock starts once every connection
        // has logged in (pgbench's figures leave connecting out too).
        let startLine = StartLine(expected: logins.filter { !verifies($0.login) }.count)
        let warmup = UInt64(options.warmup * 1e9), duration = UInt64(options.duration * 1e9)
        let total = await withTaskGroup(of: Tally.self) { group in
            for (index, (login, isApprover)) in logins.enumerated() {
                let host = options.host, port = options.port, workload = workload
                if let ackLog, let login, verifies(login) {
                    group.addTask {
                        await Self.verifiedCreateLoop(
                            index: index, host: host, port: port, login: login, workload: workload, log: ackLog,
                            measureFrom: measureFrom, measureUntil: measureUntil)
                    }
                    continue
                }
                group.addTask {
                    // On its connection's loop: the client's own hops would otherwise cost about
                    // as much CPU as the server's, on the same cores.
                    let loop = MultiThreadedEventLoopGroup.singleton.next()
                    return await withTaskExecutorPreference(EventLoopExecutor(loop)) {
                        await Self.connectionLoop(
                            index: index, host: host, port: port, loop: loop, login: login, approver: isApprover,
                            workload: workload, startLine: startLine, warmup: warmup, duration: duration)
                    }
                }
            }
            var total = Tally()
            for await tally in group { total.merge(tally) }
            return total
        }
        let report = Report(scenario: name, connections: options.connections, seconds: options.duration, tally: total)
        print(options.json ? report.json() : report.text())
    }

    /// One connection: connect, log in, wait at the start line, then requests until the window
    /// closes. A broken connection counts as a `CONNECTION` error and is opened again.
    private static func connectionLoop(
        index: Int, host: String, port: Int, loop: EventLoop, login: (String, String)?, approver: Bool,
        workload: Workload, startLine: StartLine, warmup: UInt64, duration: UInt64
    ) async -> Tally {
        var tally = Tally()
        var rng = SystemRandomNumberGenerator()
        var sequence = 0
        var window: (from: UInt64, until: UInt64)?
        func started() async -> (from: UInt64, until: UInt64) {
            if let window { return window }
            let start = await startLine.arrive()
            window = (start + warmup, start + warmup + duration)
            return window!
        }
        while window.map({ now() < $0.until }) ?? true {
            let connection: OrderlyConnection
            do {
                connection = try await OrderlyConnection.connect(host: host, port: port, timeout: .seconds(30), group: loop)
                if let login {
                    let auth = try await connection.authenticate(username: login.0, password: login.1)
                    guard auth.isSuccess else {
                        tally.fail("AUTH:" + (auth.errorCode ?? "?"))
                        await connection.close()
                        _ = await started()
                        return tally
                    }
                }
            } catch {
                let (measureFrom, _) = await started()
                if now() >= measureFrom { tally.fail("CONNECTION") }
                try? await Task.sleep(nanoseconds: 100_000_000)
                continue
            }
            let (measureFrom, measureUntil) = await started()
            do {
                while true {
                    let started = now()
                    if started >= measureUntil { break }
                    let measured = started >= measureFrom
                    if approver {
                        try await approve(connection, tally: &tally, measured: measured, rng: &rng)
                        continue
                    }
                    sequence += 1
                    let (operation, line) = workload.next(connection: index, sequence: sequence, rng: &rng)
                    let response = try await connection.request(line)
                    if measured {
                        tally.record(operation, micros: (now() - started) / 1000)
                        if let code = response.errorCode { tally.fail(code) }
                    }
                }
                await connection.close()
                return tally
            } catch {
                if now() >= measureFrom && now() < measureUntil { tally.fail("CONNECTION") }
                await connection.close()
            }
        }
        return tally
    }

    /// An approver's turn: look at the queue, approve one of the orders in it (a random one, so
    /// that approvers of the same role seldom race for the same order).
    private static func approve(_ connection: OrderlyConnection, tally: inout Tally, measured: Bool,
                                rng: inout SystemRandomNumberGenerator) async throws {
        var started = now()
        let queue = try await connection.request("APPROVAL QUEUE limit=20")
        if measured {
            tally.record("approval_queue", micros: (now() - started) / 1000)
            if let code = queue.errorCode { tally.fail(code) }
        }
        let orders = queue.data.compactMap { (BenchData.object($0)?["order"] as? NSNumber)?.int64Value }
        guard let order = orders.randomElement(using: &rng) else {
            try await Task.sleep(nanoseconds: 20_000_000)  // nothing to approve yet
            return
        }
        started = now()
        let approved = try await connection.request("ORDER APPROVE \(order) comment=\"bench\"")
        if measured {
            tally.record("approve", micros: (now() - started) / 1000)
            if let code = approved.errorCode { tally.fail(code) }
        }
    }
}

/// Holds every connection at the start until all of them have logged in (or failed to), then
/// gives them all the same start time.
actor StartLine {
    private let expected: Int
    private var arrived = 0
    private var start: UInt64?
    private var waiting: [CheckedContinuation<UInt64, Never>] = []

    init(expected: Int) { self.expected = expected }

    func arrive() async -> UInt64 {
        arrived += 1
        if let start { return start }
        if arrived >= expected {
            let now = Runner.now()
            start = now
            for continuation in waiting { continuation.resume(returning: now) }
            waiting = []
            return now
        }
        return await withCheckedContinuation { waiting.append($0) }
    }
}
