#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs a program to completion, blocking the calling thread (call it only where blocking is
/// allowed). It spawns and reaps the child itself: Foundation's `Process` waits on a SIGCHLD
/// source that can miss a child whose own child (the postmaster) lives on.
enum ChildProcess {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Returns the exit status and what the program wrote to standard output and error. The
    /// output goes to a private temporary file, not a pipe: a daemon the program leaves running
    /// (the postmaster of `pg_ctl start`) inherits it, and a pipe would never reach end-of-file.
    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        var template = Array("/tmp/orderlyd-child-XXXXXX".utf8CString)
        let outputFile = mkstemp(&template)
        guard outputFile >= 0 else { throw Failure(description: "cannot create a temporary file: \(String(cString: strerror(errno)))") }
        // Unlinked at once: the open descriptor is all we need, and nothing is left behind.
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        defer { close(outputFile) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outputFile, 1)
        posix_spawn_file_actions_adddup2(&actions, outputFile, 2)

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard spawned == 0 else { throw Failure(description: "cannot start \(executable): \(String(cString: strerror(spawned)))") }

        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else { throw Failure(description: "waiting for \(executable) failed: \(String(cString: strerror(errno)))") }
        }
        // WIFEXITED / WEXITSTATUS, which Swift does not import as functions.
        let exit = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (exit, readAll(outputFile))
    }

    private static func readAll(_ descriptor: Int32) -> String {
        lseek(descriptor, 0, SEEK_SET)
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(descriptor, &chunk, chunk.count)
            if count <= 0 { break }
            bytes += chunk[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
