/// How far the event listener has read the notifications (docs/ARCHITECTURE.md §5).
///
/// Transactions commit out of id order, so "after the last id" is not enough: an id below it may
/// still be uncommitted. Such an id is a gap, kept with its horizon: a transaction id drawn after
/// the gap was first seen, so newer than that of whatever transaction holds it (api.notify takes a
/// transaction id before the row takes its id). Once a snapshot's xmin reaches the horizon that
/// transaction has ended: if the row is still not there, it rolled back and never will be.
/// Each batch of `api.event_feed` asks for the rows after `lastID` and for the gaps; what it
/// returns is applied here, and what is new is handed on once.
public struct EventCursor: Sendable, Equatable {
    public private(set) var lastID: Int64
    /// Gap id → horizon (an xid8).
    public private(set) var gaps: [Int64: UInt64]

    /// More gaps than this only when thousands of notifying transactions roll back while one old
    /// transaction stays open; the oldest are then given up (and logged) rather than kept forever.
    public static let maximumGaps = 100_000

    public init(lastID: Int64, gaps: [Int64: UInt64] = [:]) {
        self.lastID = lastID
        self.gaps = gaps
    }

    /// The gap ids to ask for again, in order.
    public var gapIDs: [Int64] { gaps.keys.sorted() }

    public struct Batch {
        public var snapshotXmin: UInt64
        /// For the gaps the batch leaves (nil when it leaves none).
        public var gapHorizon: UInt64?
        /// In id order.
        public var events: [Event]
        /// Whether the batch held as many rows as were asked for (more may follow).
        public var full: Bool

        public init(snapshotXmin: UInt64, gapHorizon: UInt64?, events: [Event], full: Bool) {
            self.snapshotXmin = snapshotXmin
            self.gapHorizon = gapHorizon
            self.events = events
            self.full = full
        }
    }

    public struct MissingHorizon: Error, CustomStringConvertible {
        public var description: String { "api.event_feed left gaps without a horizon" }
    }

    /// Applies one batch; returns the events to hand on (each id at most once) and how many gaps
    /// had to be given up. Throws, changing nothing, if the batch leaves gaps without a horizon.
    public mutating func apply(_ batch: Batch) throws -> (events: [Event], givenUp: Int) {
        var next = self
        let result = try next.applying(batch)
        self = next
        return result
    }

    private mutating func applying(_ batch: Batch) throws -> (events: [Event], givenUp: Int) {
        var fresh: [Event] = []
        var givenUp = 0
        for event in batch.events {
            if event.id <= lastID {
                // A gap that filled (anything else at or below lastID was handed on already).
                if gaps.removeValue(forKey: event.id) != nil { fresh.append(event) }
                continue
            }
            // A jump larger than the bound (a sequence moved by hand) keeps only its top.
            var missing = max(lastID + 1, event.id - Int64(Self.maximumGaps))
            givenUp += Int(missing - (lastID + 1))
            if missing < event.id && batch.gapHorizon == nil { throw MissingHorizon() }
            while missing < event.id {
                gaps[missing] = batch.gapHorizon
                missing += 1
            }
            lastID = event.id
            fresh.append(event)
        }
        // A batch cut short by its size may have left filled gaps out: settle them next time.
        if !batch.full {
            gaps = gaps.filter { $0.value > batch.snapshotXmin }
        }
        if gaps.count > Self.maximumGaps {
            for id in gaps.keys.sorted().prefix(gaps.count - Self.maximumGaps) {
                gaps.removeValue(forKey: id)
                givenUp += 1
            }
        }
        return (fresh, givenUp)
    }
}
