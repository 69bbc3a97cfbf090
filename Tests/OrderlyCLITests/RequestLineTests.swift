import OrderlyClient
import Testing

@Suite struct RequestLineTests {
    @Test func argumentsThatAreTokensAreKeptAsTyped() {
        #expect(RequestLine.join(["ORDER", "CREATE", #"lines=[{"sku": "A", "qty": 3}]"#, "note=\"hi\""])
            == #"ORDER CREATE lines=[{"sku": "A", "qty": 3}] note="hi""#)
    }

    @Test func argumentsWithSpacesAreQuoted() {
        #expect(RequestLine.join(["AUTH", "alice", "correct horse"]) == #"AUTH alice "correct horse""#)
        #expect(RequestLine.join(["NOTE", "text=leave at the door"]) == #"NOTE text="leave at the door""#)
        #expect(RequestLine.join(["X", "say \"hi\""]) == #"X "say \"hi\"""#)
        #expect(RequestLine.join(["X", ""]) == #"X """#)
    }

    @Test func aSingleArgumentIsAWholeLine() {
        #expect(RequestLine.join(["HELP whoami"]) == "HELP whoami")
        #expect(RequestLine.join([]) == "")
    }
}
