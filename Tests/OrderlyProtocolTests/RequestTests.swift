import OrderlyProtocol
import Testing

@Suite struct RequestTests {
    @Test func bareWordsAndPairs() throws {
        let request = try Request(parsing: "order show 1042 mine=true")
        #expect(request.commandWords == ["ORDER", "SHOW", "1042"])
        #expect(request.tokens == [
            .positional(.bare("order")), .positional(.bare("show")), .positional(.bare("1042")),
            .named(key: "mine", value: .bare("true")),
        ])
    }

    /// Command words are upper-cased as ASCII only: a dotless ı or a long ſ does not spell INBOX
    /// or SHOW (Unicode upper-casing made "ınbox" run INBOX).
    @Test func commandWordsAreASCIIUpperCased() throws {
        #expect(try Request(parsing: "ınbox limit=1").commandWords == ["ıNBOX"])
        #expect(try Request(parsing: "order ſhow 1").commandWords == ["ORDER", "ſHOW", "1"])
        #expect(try Request(parsing: "Order Show 1").commandWords == ["ORDER", "SHOW", "1"])
    }

    @Test func quotedStringsAreUnescaped() throws {
        let request = try Request(parsing: #"AUTH "alice smith" "p\"w\\d \u00e9 \ud83d\ude00""#)
        #expect(request.positionalValues(skipping: 1) == [.string("alice smith"), .string("p\"w\\d é 😀")])
    }

    @Test func jsonValuesMayContainSpaces() throws {
        let request = try Request(parsing: #"ORDER QUOTE customer=7 lines=[{"sku": "PHN 128", "qty": 3}] note="leave at door""#)
        #expect(request.tokens.count == 5)
        #expect(request.tokens[3] == .named(key: "lines", value: .json(#"[{"sku": "PHN 128", "qty": 3}]"#)))
        #expect(request.tokens[4] == .named(key: "note", value: .string("leave at door")))
    }

    @Test func argumentObjectNamesPositionalsAndKeepsTypes() throws {
        let request = try Request(parsing: #"ORDER SHOW 1042 verbose=true code=007 name=Zoë price=12.50 note="x" opts={"a":1}"#)
        let object = try request.argumentObject(skipping: 2, positionalNames: ["id"])
        #expect(object == #"{"id":1042,"verbose":true,"code":"007","name":"Zoë","price":12.50,"note":"x","opts":{"a":1}}"#)
    }

    @Test func argumentErrors() throws {
        let duplicate = try Request(parsing: "X 1 id=2")
        #expect(throws: ProtocolError.self) { try duplicate.argumentObject(skipping: 1, positionalNames: ["id"]) }
        let extra = try Request(parsing: "X 1 2")
        #expect(throws: ProtocolError(.badSyntax, "too many positional arguments (expected: id); use key=value")) {
            try extra.argumentObject(skipping: 1, positionalNames: ["id"])
        }
    }

    @Test func largeButReasonableNumbersPass() throws {
        let request = try Request(parsing: "X a=1e1000 b=-0.000001 c=1E+0009 d=" + String(repeating: "9", count: 1000))
        #expect(request.tokens.count == 5)
        #expect(try Request(parsing: "X a=1e1001").argumentObject(skipping: 1, positionalNames: []) == #"{"a":"1e1001"}"#)
    }

    @Test func unicodeWordsAndTabs() throws {
        let request = try Request(parsing: "CUSTOMER\tFIND q=张伟")
        #expect(request.tokens.last == .named(key: "q", value: .bare("张伟")))
    }

    @Test(arguments: [
        ("", "empty request"),
        ("   ", "empty request"),
        ("AUTH \"unterminated", "unterminated JSON string"),
        ("X lines=[1,2", "unterminated JSON array"),
        ("X a={\"k\":}", "invalid JSON value"),
        ("X a={\"k\":1}junk", "a space must follow a quoted or JSON value"),
        ("X ab\"c", "unexpected quote inside a word"),
        ("X a=", "value missing after 'a='; use a=\"\" for an empty string"),
        ("X 1bad=2", "invalid argument name '1bad'"),
        ("X \"\\u0000\"", "\\u0000 is not allowed in JSON strings"),
        ("X \"\\ud800\"", "unpaired UTF-16 surrogate in JSON string"),
        ("X a=[01]", "',' or ']' expected in JSON"),
        ("X a=[1e999999]", "JSON number out of range"),
        (#"X lines=[{"sku":"A","qty":1,"sku":"B"}]"#, #"key "sku" given twice in a JSON object"#),
        (#"X a={"k":1,"\u006b":2}"#, #"key "k" given twice in a JSON object"#),
        ("X a={\"\u{E9}\":1,\"\\u00e9\":2}", "key \"\u{E9}\" given twice in a JSON object"),
        ("X a=[1e-1001]", "JSON number out of range"),
        ("X a=[1." + String(repeating: "5", count: 1000) + "]", "JSON number out of range"),
    ])
    func badSyntax(line: String, message: String) {
        #expect(throws: ProtocolError(.badSyntax, message)) { try Request(parsing: line) }
    }

    @Test func controlCharactersAndInvalidUTF8() {
        #expect(throws: ProtocolError(.badSyntax, "NUL byte in request")) { try Request(parsing: [0x50, 0x00, 0x51]) }
        #expect(throws: ProtocolError(.badSyntax, "control character in request")) { try Request(parsing: [0x50, 0x1B, 0x51]) }
        #expect(throws: ProtocolError(.badSyntax, "request is not valid UTF-8")) { try Request(parsing: [0x50, 0xC3, 0x28]) }
    }

    /// What a request stores is shown later on terminals, in mail and in BI tools: no control
    /// character gets in as a C1 character or a JSON escape, and no bidirectional override.
    @Test(arguments: [
        ("X note=\"a\u{9B}31mb\"", "control character in request"),
        ("X note=a\u{85}b", "control character in request"),
        ("X note=\"invoice\u{202E}fdp.exe\"", "bidirectional override (U+202E) in request"),
        ("X note=\"a\u{2066}b\"", "bidirectional override (U+2066) in request"),
        (#"X note="a\u001b[31mb""#, "control character inside a JSON string"),
        (#"X note="a\u009bb""#, "control character inside a JSON string"),
        (#"X note="a\u007fb""#, "control character inside a JSON string"),
        (#"X note="a\bb""#, "control character inside a JSON string"),
        (#"X note="a\u202eb""#, "bidirectional override (U+202E) inside a JSON string"),
        ("X name=\"Acme\u{2028}Corp\"", "line separator (U+2028) in request"),
        (#"X name="Acme\u2029Corp""#, "line separator (U+2029) inside a JSON string"),
        (#"X a={"k\u0007":1}"#, "control character inside a JSON string"),
        // Invisible characters that carry or hide text: annotations, tags, deprecated formats, U+FEFF.
        ("X note=\"gate 1\u{FFF9}gate 9\u{FFFB}\"", "invisible character (U+FFF9) in request"),
        ("X note=\"tag:\u{E0041}\u{E0042}\"", "invisible character (U+E0041) in request"),
        ("X note=\"a\u{206A}b\"", "invisible character (U+206A) in request"),
        ("X note=\"a\u{FEFF}b\"", "invisible character (U+FEFF) in request"),
        (#"X note="a\ufffab""#, "invisible character (U+FFFA) inside a JSON string"),
        (#"X note="a\udb40\udc41b""#, "invisible character (U+E0041) inside a JSON string"),
    ])
    func textThatWouldDisplayAsSomethingElse(line: String, message: String) {
        #expect(throws: ProtocolError(.badSyntax, message)) { try Request(parsing: line) }
    }

    @Test func lineBreaksTabsDirectionMarksAndOtherScriptsStay() throws {
        for line in [#"X note="line 1\nline 2\r\n\tend""#, "X note=\"\u{05E9}\u{05DC}\u{05D5}\u{05DD} \u{200F}(1)\"",
                     "X name=Müller\u{A0}GmbH", "X note=\"\u{2014} \u{2030} \u{20AC}\"",
                     #"X note="caf\u00e9 \u2014 \u200e""#,
                     // Joiners and the zero-width space that scripts and emoji need; emoji past U+FFFF.
                     "X note=\"\u{1F468}\u{200D}\u{1F469} \u{0E01}\u{200B}\u{0E02} \u{200C}\"", #"X note="\ud83d\ude00 \uFFFD""#,
                     // Two keys jsonb tells apart (é and e + combining acute), though Swift's == would not.
                     "X a={\"\u{E9}\":1,\"e\u{301}\":2}"] {
            #expect((try? Request(parsing: line)) != nil, "\(line)")
        }
    }

    @Test func overLongLineAndDeepJSON() {
        let limits = Limits(maxLineBytes: 16, maxJSONDepth: 4)
        #expect(throws: ProtocolError(.lineTooLong, "request line longer than 16 bytes")) {
            try Request(parsing: String(repeating: "A", count: 17), limits: limits)
        }
        #expect(throws: ProtocolError(.badSyntax, "JSON nested deeper than 4 levels")) {
            try Request(parsing: "X a=[[[[[1]]]]]", limits: Limits(maxJSONDepth: 4))
        }
        #expect((try? Request(parsing: String(repeating: "A", count: 16), limits: limits)) != nil)
    }

    /// Many keys in one object (past the few compared in place, a set of code points): distinct
    /// ones pass, escaped or not, and a duplicate among them is found, also written otherwise.
    @Test func manyKeysInOneObject() throws {
        let keys = (0..<5000).map { #""\/k\#($0)":0"# }
        let limits = Limits(maxLineBytes: 200_000)
        _ = try Request(parsing: "X a={" + keys.joined(separator: ",") + "}", limits: limits)
        #expect(throws: ProtocolError(.badSyntax, #"key "/k1" given twice in a JSON object"#)) {
            try Request(parsing: "X a={" + (keys + [#""/k1":1"#]).joined(separator: ",") + "}", limits: limits)
        }
    }

    @Test func deepNestingFromHostileInputDoesNotCrash() {
        let line = "X a=" + String(repeating: "[", count: 100_000)
        #expect(throws: ProtocolError.self) { try Request(parsing: line, limits: Limits(maxLineBytes: 200_000)) }
    }
}
