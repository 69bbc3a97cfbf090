import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import OrderlyServer
import OrderlyTestSupport
import Testing

@Suite struct TLSTests {
    /// A self-signed certificate for localhost, made with the openssl command.
    static func makeCertificate(in folder: String) async throws -> (cert: String, key: String) {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let openssl = try await Program.run("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-days", "1",
            "-keyout", folder + "/key.pem", "-out", folder + "/cert.pem"])
        guard openssl.status == 0 else { throw TestFailure("openssl failed: \(openssl.stderr)") }
        return (folder + "/cert.pem", folder + "/key.pem")
    }

    /// Opens a TLS connection trusting `caFile`, sends `lines`, and returns what came back
    /// until the server closed the connection.
    static func exchange(port: Int, caFile: String, lines: String, maximumVersion: TLSVersion? = nil) async throws -> String {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(caFile)
        tls.maximumTLSVersion = maximumVersion
        let context = try NIOSSLContext(configuration: tls)
        let received = NIOLockedValueBox<[UInt8]>([])
        final class Collector: ChannelInboundHandler, Sendable {
            typealias InboundIn = ByteBuffer
            let sink: NIOLockedValueBox<[UInt8]>
            init(_ sink: NIOLockedValueBox<[UInt8]>) { self.sink = sink }
            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                let buffer = unwrapInboundIn(data)
                sink.withLockedValue { $0 += buffer.readableBytesView }
            }
        }
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: "localhost"))
                    try channel.pipeline.syncOperations.addHandler(Collector(received))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        try await channel.writeAndFlush(channel.allocator.buffer(string: lines)).get()
        try await channel.closeFuture.get()
        return String(decoding: received.withLockedValue { $0 }, as: UTF8.self)
    }

    @Test func theTLSListenerSpeaksTheSameProtocol() async throws {
        let folder = TemporaryFiles.path("orderly-tls")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (cert, key) = try await TLSTests.makeCertificate(in: folder)
        try await withTestServer(configure: {
            $0.tls = .init(host: "127.0.0.1", port: 0, certificatePath: cert, privateKeyPath: key)
        }) { server in
            try await server.database.createUser("tess", password: "tess-password", roles: [])
            let tlsPort = try #require(server.server.tlsPort)
            let transcript = try await TLSTests.exchange(port: tlsPort, caFile: cert, lines: "AUTH tess tess-password\nWHOAMI\nQUIT\n")
            let lines = transcript.split(separator: "\n")
            #expect(lines.first?.hasPrefix("#orderly proto=1") == true)
            #expect(lines.contains("+OK authenticated as tess"))
            #expect(lines.contains { $0.hasPrefix("*") && $0.contains("tess") })
            #expect(lines.last == "+OK bye")
        }
    }

    @Test func anUntrustedClientHandshakeFails() async throws {
        let folder = TemporaryFiles.path("orderly-tls")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (cert, key) = try await TLSTests.makeCertificate(in: folder)
        let (otherCert, _) = try await TLSTests.makeCertificate(in: folder + "/other")
        try await withTestServer(configure: {
            $0.tls = .init(host: "127.0.0.1", port: 0, certificatePath: cert, privateKeyPath: key)
        }) { server in
            let tlsPort = try #require(server.server.tlsPort)
            let transcript = try? await TLSTests.exchange(port: tlsPort, caFile: otherCert, lines: "PING\n")
            #expect(transcript == nil || transcript == "")
        }
    }

    @Test func tlsBelowVersionOneTwoIsRefused() async throws {
        let folder = TemporaryFiles.path("orderly-tls")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (cert, key) = try await TLSTests.makeCertificate(in: folder)
        try await withTestServer(configure: {
            $0.tls = .init(host: "127.0.0.1", port: 0, certificatePath: cert, privateKeyPath: key)
        }) { server in
            let tlsPort = try #require(server.server.tlsPort)
            for old in [TLSVersion.tlsv1, .tlsv11] {
                let transcript = try? await TLSTests.exchange(port: tlsPort, caFile: cert, lines: "PING\n", maximumVersion: old)
                #expect(transcript == nil || transcript == "", "\(old)")
            }
            let current = try await TLSTests.exchange(port: tlsPort, caFile: cert, lines: "PING\nQUIT\n", maximumVersion: .tlsv12)
            #expect(current.contains("+PONG"))
        }
    }
}
