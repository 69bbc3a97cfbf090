#if canImport(Glibc)
import Glibc
#endif

public enum FileLimit {
    /// Raises the soft limit on open files to the hard limit and returns it (-1 if unknown): each
    /// connection is a descriptor, and the common soft default of 1024 is far below what one
    /// server should hold, or one load generator should open.
    public static func raise() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return -1 }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        return Int(limit.rlim_cur)
    }
}
