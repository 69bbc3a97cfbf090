#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOConcurrencyHelpers

/// Unbuffered writes to stdout and stderr. Replies, events and the line editor all write to the
/// terminal from different threads; whole writes under one lock keep their lines from
/// interleaving, and bypassing stdio's buffer keeps the order in which they were written.
enum StandardStreams {
    private static let lock = NIOLock()

    static func out(_ text: String) { emit(text, to: STDOUT_FILENO) }
    static func err(_ text: String) { emit(text, to: STDERR_FILENO) }

    static func emit(_ text: String, to descriptor: Int32) {
        guard !text.isEmpty else { return }
        lock.withLock {
            var bytes = Array(text.utf8)[...]
            while !bytes.isEmpty {
                let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
                if written < 0 {
                    if errno == EINTR { continue }
                    return  // stdout closed (e.g. `| head`): nothing useful left to do with output
                }
                bytes = bytes.dropFirst(written)
            }
        }
    }
}
