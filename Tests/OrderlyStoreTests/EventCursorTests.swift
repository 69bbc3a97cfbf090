import OrderlyStore
import Testing

/// The listener's bookkeeping of gaps (EventCursor); the same against a real server and real
/// out-of-order commits is EventsTests.notificationsCommittedOutOfIdOrderArriveOnceEach.
@Suite struct EventCursorTests {
    private func event(_ id: Int64) -> Event { Event(id: id, kind: "admin.notice", userId: 1, role: nil, json: "{}") }

    @Test func aLateLowerIdIsHandedOnOnceAndARolledBackOneIsForgotten() throws {
        var cursor = EventCursor(lastID: 10)
        // 11 and 13 are uncommitted; 12 and 14 are there. Horizon: transaction 500.
        var result = try cursor.apply(.init(snapshotXmin: 400, gapHorizon: 500, events: [event(12), event(14)], full: false))
        #expect(result.events.map(\.id) == [12, 14])
        #expect(cursor.lastID == 14 && cursor.gapIDs == [11, 13])
        // 13 commits; the snapshot's xmin has not reached the horizon: 11 may still come.
        result = try cursor.apply(.init(snapshotXmin: 450, gapHorizon: nil, events: [event(13)], full: false))
        #expect(result.events.map(\.id) == [13])
        #expect(cursor.gapIDs == [11])
        // 13 again (a repeated batch) is not handed on twice.
        result = try cursor.apply(.init(snapshotXmin: 450, gapHorizon: nil, events: [event(13)], full: false))
        #expect(result.events.isEmpty)
        // Every transaction older than the horizon has ended and 11 is not there: it rolled back.
        result = try cursor.apply(.init(snapshotXmin: 500, gapHorizon: nil, events: [], full: false))
        #expect(result.events.isEmpty && cursor.gapIDs.isEmpty && cursor.lastID == 14)
    }

    @Test func aFullBatchSettlesNoGap() throws {
        var cursor = EventCursor(lastID: 1, gaps: [1: 100])
        // Cut short by its size, the batch may have left the filled gap out.
        _ = try cursor.apply(.init(snapshotXmin: 200, gapHorizon: nil, events: [event(2), event(3)], full: true))
        #expect(cursor.gapIDs == [1] && cursor.lastID == 3)
    }

    @Test func gapsWithoutAHorizonAreRefusedAndChangeNothing() throws {
        var cursor = EventCursor(lastID: 5)
        #expect(throws: EventCursor.MissingHorizon.self) {
            try cursor.apply(.init(snapshotXmin: 1, gapHorizon: nil, events: [event(6), event(8)], full: false))
        }
        #expect(cursor == EventCursor(lastID: 5))
    }

    @Test func aHugeJumpKeepsOnlyTheBoundedTop() throws {
        var cursor = EventCursor(lastID: 0)
        let jump = Int64(EventCursor.maximumGaps) + 50
        let result = try cursor.apply(.init(snapshotXmin: 1, gapHorizon: 9, events: [event(jump + 1)], full: false))
        #expect(result.givenUp == 50)
        #expect(cursor.gaps.count == EventCursor.maximumGaps && cursor.gapIDs.first == 51)
    }
}
