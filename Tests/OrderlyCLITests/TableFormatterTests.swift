import OrderlyClient
import Testing

@Suite struct TableFormatterTests {
    @Test func columnsAreTheUnionOfKeysInFirstSeenOrder() {
        let table = TableFormatter.format([
            #"{"id" : 1, "name" : "Alice", "tags" : ["a", "b"]}"#,
            #"{"id": 22, "extra": {"k": [1, null]}, "name": "Bob"}"#,
        ])
        #expect(table == """
            id  name   tags       extra
            --  -----  ---------  --------------
            1   Alice  ["a","b"]
            22  Bob               {"k":[1,null]}

            """)
    }

    @Test func valuesAreShownRawNumbersAsWrittenNullAsEmpty() {
        let table = TableFormatter.format([#"{"s":"x y","n":12.50,"big":12345678901234567890,"t":true,"f":false,"z":null}"#])
        #expect(table == """
            s    n      big                   t     f      z
            ---  -----  --------------------  ----  -----  -
            x y  12.50  12345678901234567890  true  false

            """)
    }

    @Test func nonObjectsAndInvalidJSONGoInAValueColumn() {
        let table = TableFormatter.format([#""just text""#, "[1,2]", "42", "not json {", #"{"value":"obj"}"#])
        #expect(table == """
            value
            ----------
            just text
            [1,2]
            42
            not json {
            obj

            """)
    }

    @Test func noRowsPrintNothing() {
        #expect(TableFormatter.format([]) == "")
    }

    @Test func controlCharactersCannotReachTheTerminal() {
        let table = TableFormatter.format([#"{"a":"line1\nline2","b":"\u001b[31mred\t!"}"#])
        #expect(table == """
            a             b
            ------------  ----------------
            line1\\nline2  \\u001b[31mred\\t!

            """)
        #expect(!table.unicodeScalars.contains { $0.value == 0x1B })
    }

    @Test func wideCharactersAreAlignedByTerminalColumns() {
        let table = TableFormatter.format([#"{"name":"東京","n":1}"#, #"{"name":"Zürich","n":2}"#])
        #expect(table == """
            name    n
            ------  -
            東京    1
            Zürich  2

            """)
    }

    @Test func anEmptyLastCellLeavesNoTrailingBlanks() {
        let table = TableFormatter.format([#"{"a":"x","b":"long value"}"#, #"{"a":"y"}"#])
        #expect(table == """
            a  b
            -  ----------
            x  long value
            y

            """)
    }
}
