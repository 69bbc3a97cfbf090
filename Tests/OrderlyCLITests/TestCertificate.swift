import Foundation
import OrderlyTestSupport
import NIOSSL

/// A self-signed certificate (by default for localhost and 127.0.0.1), made with the openssl
/// CLI in a folder of its own, valid for a day.
struct TestCertificate: Sendable {
    let certificatePath: String
    let keyPath: String

    static func make(names: String = "DNS:localhost,IP:127.0.0.1") async throws -> TestCertificate {
        let folder = TemporaryFiles.path("orderly-tls")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let certificate = TestCertificate(certificatePath: folder + "/cert.pem", keyPath: folder + "/key.pem")
        let openssl = try await Program.run("/usr/bin/env", [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=" + names, "-days", "1",
            "-keyout", certificate.keyPath, "-out", certificate.certificatePath,
        ])
        guard openssl.status == 0 else { throw CertificateError(output: openssl.stderr) }
        return certificate
    }

    struct CertificateError: Error {
        let output: String
    }

    /// Deletes the key and certificate.
    func remove() {
        try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: certificatePath).deletingLastPathComponent().path)
    }

    func serverContext() throws -> NIOSSLContext {
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certificatePath).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: keyPath, format: .pem)))
        return try NIOSSLContext(configuration: configuration)
    }
}
