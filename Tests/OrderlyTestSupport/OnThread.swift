import Foundation

/// Runs blocking work (waiting for a child process, a database call) on a thread of its own.
/// Blocking one of Swift concurrency's few cooperative threads instead can stall the whole test
/// process: Foundation's Process itself needs a dispatch thread to notice that a child has exited.
/// And not on `NIOThreadPool.singleton` either: it has one thread per core, and tests that start
/// clusters (initdb, pg_ctl) hold them for many seconds on a busy machine, long enough for a
/// test queued behind them to outlast the server's idle limits.
public func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}
