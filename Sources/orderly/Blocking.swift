import Foundation

/// Runs a blocking call (reading stdin, getpass) on a thread of its own and awaits its result,
/// so that it never occupies one of Swift concurrency's few cooperative threads.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        let thread = Thread { continuation.resume(returning: body()) }
        thread.start()
    }
}
