import OrderlyProtocol
import OrderlyStore
import Testing

@Suite struct SQLStateTests {
    @Test func errorCodesMapFromSQLState() {
        #expect(ErrorCode(sqlState: "OL404") == .notFound)
        #expect(ErrorCode(sqlState: "OL429") == .locked)
        #expect(ErrorCode(sqlState: "23505") == nil)
    }
}
