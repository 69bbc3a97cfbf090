import Foundation

enum Password {
    /// The password from `ORDERLY_PASSWORD`, or else asked for without echo. getpass reads
    /// /dev/tty, so it works even when stdin is a pipe of commands.
    static func obtain(for user: String) async -> String {
        if let password = ProcessInfo.processInfo.environment["ORDERLY_PASSWORD"] { return password }
        return await prompt("Password for \(user): ")
    }

    static func prompt(_ text: String) async -> String {
        await onOwnThread {
            guard let pointer = getpass(text) else { return "" }
            return String(cString: pointer)
        }
    }
}
