import Foundation

/// Where and how orderlyd hands e-mail to a relay: `--smtp-url`.
///
///     smtp://host:25                      plain SMTP (a relay on the same host or network)
///     smtp://user:secret@host:587         STARTTLS required, then AUTH PLAIN
///     smtp://host:25?starttls=no          never STARTTLS (a local test server)
///     smtps://user:secret@host:465        TLS from the first byte
///
/// Credentials in the URL are percent-decoded. STARTTLS is used when the relay offers it, and
/// required when credentials are given (a password never crosses the network in the clear) or
/// `starttls=required`.
public struct SMTPSettings: Sendable, Equatable {
    public enum Security: String, Sendable {
        case none
        case startTLSIfOffered
        case startTLSRequired
        case implicitTLS
    }

    public var host: String
    public var port: Int
    public var security: Security
    public var username: String?
    public var password: String?
    /// The envelope sender and From: header.
    public var from: String
    /// The name this server gives itself in EHLO.
    public var heloName: String
    /// Seconds one exchange (connect, a reply) may take.
    public var timeoutSeconds: Int = 30
    /// PEM CA certificates to check the relay's certificate against, instead of the system's
    /// trust store (a relay with a company CA).
    public var caFile: String?

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    public init(host: String, port: Int, security: Security, username: String? = nil, password: String? = nil,
                from: String, heloName: String = "orderly.localhost") {
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password
        self.from = from
        self.heloName = heloName
    }

    public init(url text: String, from: String) throws {
        guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased(), ["smtp", "smtps"].contains(scheme),
              let host = url.host, !host.isEmpty else {
            throw Invalid(description: "--smtp-url must look like smtp://host:25 or smtps://user:password@host:465")
        }
        let query = Dictionary((url.queryItems ?? []).map { ($0.name.lowercased(), $0.value?.lowercased() ?? "") },
                               uniquingKeysWith: { $1 })
        if let unknown = query.keys.first(where: { $0 != "starttls" }) {
            throw Invalid(description: "--smtp-url: unknown parameter \"\(unknown)\"; only starttls=yes|no|required")
        }
        let username = url.percentEncodedUser.flatMap { $0.removingPercentEncoding }
        let password = url.percentEncodedPassword.flatMap { $0.removingPercentEncoding }
        let security: Security
        if scheme == "smtps" {
            security = .implicitTLS
        } else {
            switch query["starttls"] {
            case nil, "yes": security = username != nil ? .startTLSRequired : .startTLSIfOffered
            case "required": security = .startTLSRequired
            case "no":
                guard username == nil else {
                    throw Invalid(description: "--smtp-url: credentials are never sent without TLS; drop starttls=no")
                }
                security = .none
            default: throw Invalid(description: "--smtp-url: starttls must be yes, no or required")
            }
        }
        guard from.range(of: #"^[^@\s<>]+@[^@\s<>]+$"#, options: .regularExpression) != nil else {
            throw Invalid(description: "--smtp-from must be an e-mail address like orders@example.com")
        }
        self.init(host: host, port: url.port ?? (scheme == "smtps" ? 465 : 25), security: security,
                  username: username, password: password, from: from)
    }
}
