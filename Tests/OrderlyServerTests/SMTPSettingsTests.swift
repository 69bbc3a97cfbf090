import SMTPClient
import Testing

/// `--smtp-url` as an operator writes it: what each form means, and what is refused.
@Suite struct SMTPSettingsTests {
    @Test func eachFormOfTheURL() throws {
        let plain = try SMTPSettings(url: "smtp://mail.example.com", from: "orders@example.com")
        #expect(plain.port == 25 && plain.security == .startTLSIfOffered && plain.username == nil)
        let auth = try SMTPSettings(url: "smtp://user%40corp:p%3Ass@mail.example.com:587", from: "orders@example.com")
        #expect(auth.port == 587 && auth.security == .startTLSRequired)
        #expect(auth.username == "user@corp" && auth.password == "p:ss")
        let local = try SMTPSettings(url: "smtp://127.0.0.1:2525?starttls=no", from: "orders@example.com")
        #expect(local.security == SMTPSettings.Security.none)
        let implicit = try SMTPSettings(url: "smtps://u:p@mail.example.com", from: "orders@example.com")
        #expect(implicit.port == 465 && implicit.security == .implicitTLS)
    }

    @Test func refusedForms() {
        #expect(throws: SMTPSettings.Invalid.self) { try SMTPSettings(url: "http://mail.example.com", from: "orders@example.com") }
        #expect(throws: SMTPSettings.Invalid.self, "a password is never sent in the clear") {
            try SMTPSettings(url: "smtp://u:p@mail.example.com?starttls=no", from: "orders@example.com")
        }
        #expect(throws: SMTPSettings.Invalid.self) { try SMTPSettings(url: "smtp://mail.example.com?tls=1", from: "orders@example.com") }
        #expect(throws: SMTPSettings.Invalid.self) { try SMTPSettings(url: "smtp://mail.example.com", from: "not an address") }
    }
}
