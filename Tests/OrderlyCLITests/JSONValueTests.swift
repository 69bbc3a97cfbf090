import OrderlyClient
import Testing

@Suite struct JSONValueTests {
    @Test func keepsKeyOrderAndNumberText() {
        let value = JSONValue(parsing: #" {"b": 1.50, "a": [true, null, "x\"y"], "c": {}} "#)
        #expect(value?.compactText == #"{"b":1.50,"a":[true,null,"x\"y"],"c":{}}"#)
    }

    @Test func decodesEscapesAndSurrogatePairs() {
        #expect(JSONValue(parsing: #""a\u00e9\ud83d\ude00\n\/""#) == .string("aé😀\n/"))
        #expect(JSONValue(parsing: #""lone \ud800""#) == .string("lone \u{FFFD}"))
    }

    @Test func rejectsInvalidJSON() {
        for text in ["", "{", "[1,]", "{\"a\"}", "01", "1.", "-", "tru", "\"unterminated", "\"tab\there\"", "1 2", "{\"a\":1,}"] {
            #expect(JSONValue(parsing: text) == nil, "\(text)")
        }
    }

    @Test func deepNestingIsRefusedNotACrash() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(JSONValue(parsing: deep) == nil)
        let fine = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(JSONValue(parsing: fine) != nil)
    }
}
