import OrderlyProtocol

/// Builds one request line from command-line arguments, so that what the shell already split
/// and unquoted reaches the server as the user meant it.
public enum RequestLine {
    /// A single argument is sent as typed: it is a whole request line (`orderly 'HELP whoami'`).
    /// Several arguments are joined with spaces, each kept as typed when it is one valid token
    /// (`WHOAMI`, `lines=[{"sku": "A"}]`, `"quoted"`); otherwise its value is quoted as a JSON
    /// string: `note=leave at the door` → `note="leave at the door"`, `correct horse` →
    /// `"correct horse"`.
    public static func join(_ arguments: [String]) -> String {
        guard arguments.count > 1 else { return arguments.first ?? "" }
        return arguments.map(token).joined(separator: " ")
    }

    static func token(_ argument: String) -> String {
        if let request = try? Request(parsing: argument), request.tokens.count == 1 { return argument }
        if let equals = argument.firstIndex(of: "="), equals != argument.startIndex {
            let key = String(argument[..<equals])
            if let request = try? Request(parsing: key), request.tokens == [.positional(.bare(key))] {
                return key + "=" + JSONText.quote(String(argument[argument.index(after: equals)...]))
            }
        }
        return JSONText.quote(argument)
    }
}
