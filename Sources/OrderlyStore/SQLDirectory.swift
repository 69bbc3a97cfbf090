import Foundation

/// Finds the `sql/` folder of migrations when no `--sql-dir` is given: beside the working
/// directory, then upwards from the executable (a build in `.build/…/orderlyd` finds the
/// checkout's `sql/`), then the install location used by the Docker image.
public enum SQLDirectory {
    public static func locate(explicit: String? = nil) -> String? {
        if let explicit { return explicit }
        if let fromEnvironment = ProcessInfo.processInfo.environment["ORDERLY_SQL_DIR"] { return fromEnvironment }
        var candidates = [FileManager.default.currentDirectoryPath + "/sql"]
        let executable = Bundle.main.executablePath ?? CommandLine.arguments[0]
        var directory = URL(fileURLWithPath: executable).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<6 {
            candidates.append(directory.appendingPathComponent("sql").path)
            directory = directory.deletingLastPathComponent()
        }
        candidates.append("/usr/share/orderly/sql")
        return candidates.first { isMigrationDirectory($0) }
    }

    static func isMigrationDirectory(_ path: String) -> Bool {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.contains { $0.hasPrefix("V001__") && $0.hasSuffix(".sql") }
    }
}
