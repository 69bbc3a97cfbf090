import Foundation
import OrderlyTestSupport
import NIOSSL

/// A self-signed certificate (by default for localhost and 127.0.0.1), made with the openssl
/// CLI in a folder of its own, valid for a day.
struct TestCertificate: Sendable {
    let certificatePath: String
    let keyPath: String

    static func make(names: String = "DNS:localhost,IP:127.0.0.1") async throws -> TestCertificate {
        try await onThread { try makeBlocking(names: names) }
    }

    private static func makeBlocking(names: String) throws -> TestCertificate {
        let folder = NSTemporaryDirectory() + "orderly-tls-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let certificate = TestCertificate(certificatePath: folder + "/cert.pem", keyPath: folder + "/key.pem")
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        openssl.arguments = [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=" + names, "-days", "1",
            "-keyout", certificate.keyPath, "-out", certificate.certificatePath,
        ]
        openssl.standardOutput = FileHandle.nullDevice
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        guard openssl.terminationStatus == 0 else { throw CertificateError() }
        return certificate
    }

    struct CertificateError: Error {}

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
