import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The file of acknowledged orders that `create --verify` writes: one line
/// `key<TAB>order_id<TAB>total` per `+OK`, on disk (written and fsynced) before the order counts
/// as acknowledged. One writer thread does group commit: every line that arrived while the last
/// fsync ran goes out with the next one, so 16 clients do not queue behind 16 fsyncs.
final class AckLog: @unchecked Sendable {
    let path: String
    private let fd: Int32
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var pending: [(line: String, done: CheckedContinuation<Void, Error>)] = []
    private var closing = false
    private var finished = false

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Creates (or empties) the file and starts the writer.
    init(path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Failure(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
        let thread = Thread { [self] in writerLoop() }
        thread.name = "orderly-bench ack log"
        thread.start()
    }

    /// Returns once `key`, `orderID` and `total` are on disk.
    func append(key: String, orderID: Int64, total: String) async throws {
        let line = "\(key)\t\(orderID)\t\(total)\n"
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, Error>) in
            condition.lock()
            if closing {
                condition.unlock()
                done.resume(throwing: Failure(description: "the acknowledgement log is closed"))
                return
            }
            pending.append((line, done))
            condition.signal()
            condition.unlock()
        }
    }

    /// Writes what is pending, stops the writer and closes the file.
    func close() {
        condition.lock()
        closing = true
        condition.signal()
        while !finished { condition.wait() }
        condition.unlock()
        _ = fsync(fd)
        _ = Glibc.close(fd)
    }

    private func writerLoop() {
        while true {
            condition.lock()
            while pending.isEmpty && !closing { condition.wait() }
            let batch = pending
            pending = []
            let stop = closing && batch.isEmpty
            if stop {
                finished = true
                condition.broadcast()
            }
            condition.unlock()
            if stop { return }
            let failure = write(Array(batch.map(\.line).joined().utf8))
            for entry in batch {
                if let failure { entry.done.resume(throwing: failure) } else { entry.done.resume() }
            }
        }
    }

    private func write(_ bytes: [UInt8]) -> Failure? {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                return Failure(description: "write \(path): \(String(cString: strerror(errno)))")
            }
            offset += written
        }
        if fsync(fd) != 0 { return Failure(description: "fsync \(path): \(String(cString: strerror(errno)))") }
        return nil
    }
}
