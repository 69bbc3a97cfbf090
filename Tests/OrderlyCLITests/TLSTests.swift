import Foundation
import OrderlyClient
import Testing

/// TLS in OrderlyClient and the `--tls*` flags, against a fake server with a self-signed
/// certificate (orderlyd's own TLS listener is tested where it is built).
@Suite struct TLSTests {
    @Test func aCertificateTrustedThroughItsPEMFileIsAccepted() async throws {
        let certificate = try await TestCertificate.make()
        defer { certificate.remove() }
        try await withFakeServer(tls: try certificate.serverContext()) { server in
            for host in ["127.0.0.1", "localhost"] {  // checked against the IP and the DNS name
                let connection = try await OrderlyConnection.connect(host: host, port: server.port, tls: TLSOptions(trust: .pemFile(certificate.certificatePath)))
                #expect(connection.greeting.hasPrefix("#orderly proto=1"))
                #expect(try await connection.request("PING").final == "+PONG")
                await connection.close()
            }
            let cli = try await CLI.run(["--port", "\(server.port)", "--tls-ca", certificate.certificatePath, "PING"])
            #expect(cli.status == 0)
            #expect(cli.stderr == "+PONG\n")
        }
    }

    @Test func anUntrustedCertificateIsRefused() async throws {
        let certificate = try await TestCertificate.make()
        defer { certificate.remove() }
        let other = try await TestCertificate.make()
        defer { other.remove() }
        try await withFakeServer(tls: try certificate.serverContext()) { server in
            for trust in [TLSOptions.Trust.system, .pemFile(other.certificatePath)] {
                await #expect(throws: ClientError.tls("the server's certificate is not trusted (CERTIFICATE_VERIFY_FAILED); pass --tls-ca with the PEM file of the certificate or its CA")) {
                    _ = try await OrderlyConnection.connect(host: "127.0.0.1", port: server.port, tls: TLSOptions(trust: trust))
                }
            }
            let cli = try await CLI.run(["--port", "\(server.port)", "--tls", "PING"])
            #expect(cli.status == 2)
            #expect(cli.stderr == "orderly: cannot connect to 127.0.0.1:\(server.port): TLS: the server's certificate is not trusted (CERTIFICATE_VERIFY_FAILED); pass --tls-ca with the PEM file of the certificate or its CA\n")
        }
    }

    @Test func aCertificateForAnotherNameIsRefusedWithAHint() async throws {
        // Issued for a name only, as in the README's openssl line: connecting by address fails.
        let certificate = try await TestCertificate.make(names: "DNS:orders.example.com")
        defer { certificate.remove() }
        try await withFakeServer(tls: try certificate.serverContext()) { server in
            let message = "the server's certificate is not valid for the name or address connected to; "
                + "pass --tls-server-name with a name the certificate was issued for"
            await #expect(throws: ClientError.tls(message)) {
                _ = try await OrderlyConnection.connect(
                    host: "127.0.0.1", port: server.port, tls: TLSOptions(trust: .pemFile(certificate.certificatePath)))
            }
            let cli = try await CLI.run(["--port", "\(server.port)", "--tls-ca", certificate.certificatePath,
                                         "--tls-server-name", "orders.example.com", "PING"])
            #expect(cli.status == 0, "the name on the certificate works")
        }
    }

    /// TLS to the plain port: said as such, not as BoringSSL's WRONG_VERSION_NUMBER alone.
    @Test func tlsToThePlainPortSaysSo() async throws {
        try await withFakeServer { server in
            let cli = try await CLI.run(["--port", "\(server.port)", "--tls-insecure", "PING"])
            #expect(cli.status == 2)
            #expect(cli.stderr == "orderly: cannot connect to 127.0.0.1:\(server.port): TLS: the server did not answer in TLS "
                    + "(WRONG_VERSION_NUMBER): is this its plain port? orderlyd listens for TLS on its --tls-listen port\n", "\(cli.stderr)")
        }
    }

    @Test func insecureSkipsVerification() async throws {
        let certificate = try await TestCertificate.make()
        defer { certificate.remove() }
        try await withFakeServer(tls: try certificate.serverContext()) { server in
            let cli = try await CLI.run(["--port", "\(server.port)", "--tls-insecure", "PING"])
            #expect(cli.status == 0)
            #expect(cli.stderr == "+PONG\n")
        }
    }

    @Test func aPlainClientAtATLSPortGivesUpInsteadOfHanging() async throws {
        let certificate = try await TestCertificate.make()
        defer { certificate.remove() }
        try await withFakeServer(tls: try certificate.serverContext()) { server in
            await #expect(throws: ClientError.timedOut) {
                _ = try await OrderlyConnection.connect(host: "127.0.0.1", port: server.port, timeout: .milliseconds(300))
            }
        }
    }

    @Test func aMissingCAFileIsAClearError() async throws {
        let cli = try await CLI.run(["--port", "1", "--tls-ca", "/nonexistent/ca.pem", "PING"])
        #expect(cli.status == 2)
        #expect(cli.stderr.contains("cannot read CA certificates from /nonexistent/ca.pem"))
    }
}
