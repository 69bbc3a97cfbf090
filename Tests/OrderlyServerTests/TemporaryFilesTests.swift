import Foundation
import OrderlyTestSupport
import Testing

/// The tests' files live in one folder per test process (TemporaryFiles); a folder left by a
/// process that is gone is removed, this process's own is kept.
@Suite struct TemporaryFilesTests {
    @Test func foldersOfTestProcessesThatAreGoneAreRemoved() throws {
        let mine = try TemporaryFiles.folder("kept")
        // Above the largest pid Linux hands out (2^22): no such process can be running.
        let gone = NSTemporaryDirectory() + "orderly-tests-4194305"
        try FileManager.default.createDirectory(atPath: gone + "/orderly-sql-x", withIntermediateDirectories: true)
        TemporaryFiles.removeLeftovers()
        #expect(!FileManager.default.fileExists(atPath: gone))
        #expect(FileManager.default.fileExists(atPath: mine))
        #expect(mine.hasPrefix(NSTemporaryDirectory() + "orderly-tests-\(getpid())/"))
    }
}
