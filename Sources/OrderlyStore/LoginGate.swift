/// Lets at most `limit` password checks run at once; the others queue in arrival order and give
/// up after a bounded wait. bcrypt is slow on purpose, so without this a flood of AUTHs would
/// hold every pooled connection and starve logged-in users.
actor LoginGate {
    private var running = 0
    private var queue: [(ticket: UInt64, turn: CheckedContinuation<Bool, Never>)] = []
    private var nextTicket: UInt64 = 0

    /// True once it is this caller's turn (then call `leave()` when done); false if no turn came
    /// within `maxWait`.
    func enter(limit: Int, maxWait: Duration) async -> Bool {
        if running < limit && queue.isEmpty {
            running += 1
            return true
        }
        if maxWait <= .zero { return false }
        let ticket = nextTicket
        nextTicket += 1
        return await withCheckedContinuation { turn in
            queue.append((ticket, turn))
            Task {
                try? await Task.sleep(for: maxWait)
                self.giveUp(ticket)
            }
        }
    }

    /// Hands the finished check's turn to the next in line, if any.
    func leave() {
        if queue.isEmpty {
            running -= 1
        } else {
            queue.removeFirst().turn.resume(returning: true)
        }
    }

    private func giveUp(_ ticket: UInt64) {
        if let index = queue.firstIndex(where: { $0.ticket == ticket }) {
            queue.remove(at: index).turn.resume(returning: false)
        }
    }
}
