import CLibPQ

/// Asks the server to cancel whatever statement one connection is running (`PQcancel`), from any
/// thread, while that connection's own thread is blocked waiting for the result.
public final class Canceller: @unchecked Sendable {
    // PQcancel may be called from any thread on a PGcancel; PQfreeCancel only once nobody can
    // call it any more (deinit).
    private let cancel: OpaquePointer

    init?(connection handle: OpaquePointer) {
        guard let cancel = PQgetCancel(handle) else { return nil }
        self.cancel = cancel
    }

    deinit { PQfreeCancel(cancel) }

    /// Sends the cancel request; false if it could not be sent. The statement then fails with
    /// SQLSTATE 57014 on its own connection.
    @discardableResult
    public func cancelRunningStatement() -> Bool {
        var message = [CChar](repeating: 0, count: 256)
        return PQcancel(cancel, &message, Int32(message.count)) == 1
    }
}
