import Foundation

enum Console {
    /// Writes to standard output at once, unbuffered, so that what orderlyd prints for people
    /// (where it listens, the demo users) appears immediately even when redirected to a file.
    static func say(_ text: String, terminator: String = "\n") {
        FileHandle.standardOutput.write(Data((text + terminator).utf8))
    }
}
