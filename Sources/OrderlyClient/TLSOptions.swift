import NIOCore
import NIOSSL

/// How a client connection uses TLS. The server offers TLS on a port of its own (no STARTTLS),
/// so TLS is decided before connecting.
public struct TLSOptions: Sendable {
    /// Which certificates the server's certificate must chain to.
    public enum Trust: Sendable {
        /// The operating system's trust store.
        case system
        /// The certificates in a PEM file (e.g. a private CA, or a self-signed server certificate).
        case pemFile(String)
        /// Accept any certificate. This protects against passive eavesdropping only: anyone in
        /// the middle can pretend to be the server. For testing only.
        case insecure
    }

    public var trust: Trust
    /// The name the certificate must be valid for, also sent as SNI. By default the host that
    /// was connected to. (NIOSSL also accepts a certificate whose IP addresses include the
    /// address connected to, whatever the name.)
    public var serverName: String?

    public init(trust: Trust = .system, serverName: String? = nil) {
        self.trust = trust
        self.serverName = serverName
    }

    /// The NIOSSL client context for these options. Reading the PEM file here, rather than
    /// leaving it to the handshake, turns a missing or malformed file into a clear error.
    func makeContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch trust {
        case .system:
            configuration.trustRoots = .default
        case .pemFile(let path):
            let certificates: [NIOSSLCertificate]
            do {
                certificates = try NIOSSLCertificate.fromPEMFile(path)
            } catch {
                throw ClientError.tls("cannot read CA certificates from \(path): \(error)")
            }
            guard !certificates.isEmpty else { throw ClientError.tls("no PEM certificate in \(path)") }
            configuration.trustRoots = .certificates(certificates)
        case .insecure:
            configuration.certificateVerification = .none
        }
        return try NIOSSLContext(configuration: configuration)
    }

    /// The SNI name to send for `host`: none for an IP address, which SNI does not allow.
    func sniName(connectingTo host: String) -> String? {
        let name = serverName ?? host
        return (try? SocketAddress(ipAddress: name, port: 0)) == nil ? name : nil
    }
}
