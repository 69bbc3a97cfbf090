import Foundation

/// Where tests put their files and folders (SQL copies, data folders, certificates, logs, CSV
/// files): one folder per test process, `orderly-tests-<pid>` in the system's temporary folder,
/// removed when the process exits. A test that fails half-way leaves nothing behind, and folders
/// of a test process that died (killed, crashed) are removed by the next one.
public enum TemporaryFiles {
    private static let prefix = "orderly-tests-"

    /// This process's folder, made (and the leftovers of dead processes removed) on first use.
    public static let root: String = {
        removeLeftovers()
        let path = NSTemporaryDirectory() + prefix + String(getpid())
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: TemporaryFiles.root) }
        return path
    }()

    /// Removes the folders of test processes that are gone.
    public static func removeLeftovers() {
        let base = NSTemporaryDirectory()
        for name in (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [] where name.hasPrefix(prefix) {
            if let pid = pid_t(name.dropFirst(prefix.count)), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH {
                try? FileManager.default.removeItem(atPath: base + name)
            }
        }
    }

    /// A new path in this process's folder, nothing made there yet: `name-<unique><suffix>`.
    public static func path(_ name: String, suffix: String = "") -> String {
        root + "/" + name + "-" + UUID().uuidString.prefix(8) + suffix
    }

    /// A new, empty folder in this process's folder.
    public static func folder(_ name: String) throws -> String {
        let path = path(name)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
