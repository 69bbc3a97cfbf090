import Foundation

/// A process's resident memory from `/proc/<pid>/status`: now (VmRSS) and its peak (VmHWM).
struct ProcessMemory: Sendable {
    var rssKiB: Int
    var hwmKiB: Int

    static func read(pid: Int32) -> ProcessMemory? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        func field(_ name: String) -> Int? {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return nil }
            return line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Int($0) }
        }
        guard let rss = field("VmRSS"), let hwm = field("VmHWM") else { return nil }
        return ProcessMemory(rssKiB: rss, hwmKiB: hwm)
    }
}
