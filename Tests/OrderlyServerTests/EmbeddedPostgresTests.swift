import Foundation
import NIOPosix
import OrderlyServer
import OrderlyStore
import OrderlyTestSupport
import PostgresClient
import Testing

@Suite struct EmbeddedPostgresTests {
    @Test func createsStartsStopsAndReusesAPrivateCluster() async throws {
        let folder = TemporaryFiles.path("orderly-embedded")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let embedded = try EmbeddedPostgres(dataDirectory: folder + "/pgdata", logger: TestCluster.logger)
        try await NIOThreadPool.singleton.runIfActive {
            #expect(try embedded.start())
            defer { embedded.stop() }
            let connection = try Connection(config: embedded.connectionConfig)
            // No TCP listener, the socket only in the data folder, TCP refused even if enabled.
            #expect(try connection.query("SELECT current_setting('listen_addresses')").scalar == "")
            #expect(try connection.query("SELECT current_setting('unix_socket_directories')").scalar == folder + "/pgdata")
            try connection.executeScript("CREATE TABLE kept (note text); INSERT INTO kept VALUES ('still here')")
            connection.close()
        }
        #expect(!FileManager.default.fileExists(atPath: folder + "/pgdata.initdb"))
        try await NIOThreadPool.singleton.runIfActive {
            #expect(try embedded.start())
            defer { embedded.stop() }
            #expect(try !embedded.start(), "a running cluster is found, not started twice")
            let connection = try Connection(config: embedded.connectionConfig)
            #expect(try connection.query("SELECT note FROM kept").scalar == "still here")
            connection.close()
        }
    }

    /// One server per data folder: a second claim is refused while the first holds it, and the
    /// folder is free again once the first is gone (as when a server exits or crashes).
    @Test func aDataFolderIsServedByOneServerAtATime() throws {
        let folder = TemporaryFiles.path("orderly-claim")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var first: EmbeddedPostgres? = try EmbeddedPostgres(dataDirectory: folder + "/pgdata", logger: TestCluster.logger)
        try first?.claim()
        let second = try EmbeddedPostgres(dataDirectory: folder + "/pgdata", logger: TestCluster.logger)
        #expect(throws: EmbeddedPostgres.Failure.self) { try second.claim() }
        do {
            try second.claim()
        } catch {
            #expect("\(error)".contains("is using the data folder"), "\(error)")
        }
        first = nil
        try second.claim()
        // The same folder through a symlink is the same folder.
        try FileManager.default.createDirectory(atPath: folder + "/pgdata", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: folder + "/link", withDestinationPath: folder + "/pgdata")
        let linked = try EmbeddedPostgres(dataDirectory: folder + "/link", logger: TestCluster.logger)
        #expect(throws: EmbeddedPostgres.Failure.self) { try linked.claim() }
    }

    @Test func unsafeDataPathsAreRefused() {
        #expect(throws: EmbeddedPostgres.Failure.self) {
            try EmbeddedPostgres(dataDirectory: "/tmp/with space/pgdata", logger: TestCluster.logger)
        }
        #expect(throws: EmbeddedPostgres.Failure.self) {
            try EmbeddedPostgres(dataDirectory: "/tmp/quote'd/pgdata", logger: TestCluster.logger)
        }
    }
}
