import Dispatch
import Foundation
import NIOConcurrencyHelpers

enum Signals {
    /// Suspends until one of `signals` arrives; returns it. The default action (exit) is
    /// disabled for them so that shutdown can be orderly.
    static func wait(for signals: [Int32]) async -> Int32 {
        await withCheckedContinuation { continuation in
            let resumed = NIOLockedValueBox(false)
            let sources = NIOLockedValueBox<[DispatchSourceSignal]>([])
            for number in signals {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler {
                    let first = resumed.withLockedValue { done in defer { done = true }; return !done }
                    guard first else { return }
                    // A second Ctrl-C while shutting down ends the process at once.
                    sources.withLockedValue { $0.forEach { $0.cancel() } }
                    for number in signals { signal(number, SIG_DFL) }
                    continuation.resume(returning: number)
                }
                source.resume()
                sources.withLockedValue { $0.append(source) }
            }
        }
    }
}
