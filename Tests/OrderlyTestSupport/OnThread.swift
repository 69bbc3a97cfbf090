import Foundation

/// Runs blocking work (a libpq call, waiting for a child process) on a thread of its own.
/// Blocking one of Swift concurrency's few cooperative threads instead can stall the whole test
/// process.
public func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}
