import Foundation
import OrderlyProtocol
import Testing

@Suite struct ReplyTests {
    @Test func lineKinds() {
        #expect(Reply.ok() == "+OK\n")
        #expect(Reply.ok("3 rows") == "+OK 3 rows\n")
        #expect(Reply.success("PONG") == "+PONG\n")
        #expect(Reply.error(.notFound, "no order 7") == "-NOT_FOUND no order 7\n")
        #expect(Reply.info("orderly proto=1") == "#orderly proto=1\n")
        #expect(Reply.data(#"{"a":1}"#) == "*{\"a\":1}\n")
        #expect(Reply.event(kind: "approval.requested", json: #"{"order":7}"#) == ">approval.requested {\"order\":7}\n")
    }

    @Test func nothingBreaksALine() {
        #expect(Reply.error(.invalid, "bad\r\nvalue\u{0}") == "-INVALID bad  value \n")
        #expect(Reply.data("{\n  \"a\": \"x\"\r\n}") == "*{\"a\":\"x\"}\n")
        #expect(Reply.data("[\"a\nb\"]") == "*[\"a b\"]\n")
        #expect(Reply.ok("two\nlines") == "+OK two lines\n")
    }

    @Test func dataFromBytesIsTheSameLine() {
        // The server writes its replies' data lines from libpq's bytes, one after another.
        let values = [#"{"id" : 1, "tags" : ["a b", "c"]}"#, "{\n  \"a\": \"x\"\r\n}", "[\"a\nb\"]",
                      #"{"q" : "say \" hi \\", "n" : 2}"#, #"{"name":"张伟 😀"}"#, "", "7"]
        var out: [UInt8] = []
        for value in values {
            var value = value
            value.withUTF8 { Reply.appendData($0, to: &out) }
        }
        Reply.appendData(nil, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == values.map(Reply.data).joined() + "*null\n")
    }

    @Test func dataIsCompactedOutsideStringsOnly() {
        // PostgreSQL's json and jsonb texts of one object end up the same.
        #expect(Reply.data(#"{"id" : 1, "tags" : ["a b", "c"]}"#) == "*{\"id\":1,\"tags\":[\"a b\",\"c\"]}\n")
        #expect(Reply.data(#"{"id": 1, "tags": ["a b", "c"]}"#) == "*{\"id\":1,\"tags\":[\"a b\",\"c\"]}\n")
        // Escaped quotes and backslashes do not end a string early.
        #expect(Reply.data(#"{"q" : "say \" hi \\", "n" : 2}"#) == #"*{"q":"say \" hi \\","n":2}"# + "\n")
        #expect(Reply.event(kind: "x.y", json: #"{"a" : 1}"#) == ">x.y {\"a\":1}\n")
    }

    @Test func unicodeSurvives() {
        #expect(Reply.data(#"{"name":"张伟 😀"}"#) == "*{\"name\":\"张伟 😀\"}\n")
    }

    @Test func retryableErrorCodes() {
        #expect(ErrorCode.unavailable.isRetryable && ErrorCode.busy.isRetryable && !ErrorCode.conflict.isRetryable)
        // IN_DOUBT is retried only with the same idempotency key, never blindly.
        #expect(!ErrorCode.inDoubt.isRetryable)
    }

    /// Clients switch on the codes: each one is in the README's table of error codes, and the
    /// table has no other.
    @Test func everyErrorCodeIsDocumentedAndNoOther() throws {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        let section = try #require(text.components(separatedBy: "### Error codes").dropFirst().first?.components(separatedBy: "\n### ").first)
        let documented = Set(section.matches(of: /\n\| `([A-Z_]+)` \|/).map { String($0.1) })
        #expect(documented == Set(ErrorCode.allCases.map(\.rawValue)))
    }

    @Test func jsonQuoting() {
        #expect(JSONText.quote("a\"b\\c\n\u{1}é") == "\"a\\\"b\\\\c\\n\\u0001é\"")
        #expect(JSONText.isNumber("-12.5e3") && !JSONText.isNumber("007") && !JSONText.isNumber("1.") && !JSONText.isNumber("+1"))
    }
}
