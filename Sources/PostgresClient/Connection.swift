import CLibPQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One libpq connection. Every method blocks the calling thread: call them only from a thread
/// that may block (the pool's thread pool), never from an event loop or Swift's cooperative pool.
///
/// Not thread-safe: the pool hands a connection to exactly one caller at a time, which is why the
/// unchecked `Sendable` is sound.
public final class Connection: @unchecked Sendable {
    private var handle: OpaquePointer?
    /// SQL text → name of the statement prepared for it on this connection.
    private var prepared: [String: String] = [:]
    private var nextStatement = 1
    /// Cancels this connection's running statement from another thread. Made once at connect
    /// (PQgetCancel allocates), not at every use.
    public private(set) var canceller: Canceller?

    public init(config: ConnectionConfig) throws {
        let pairs = config.keywordValues
        var keywordPointers = pairs.map { strdup($0.0) } + [nil]
        var valuePointers = pairs.map { strdup($0.1) } + [nil]
        defer {
            keywordPointers.forEach { free($0) }
            valuePointers.forEach { free($0) }
        }
        let conn = keywordPointers.withUnsafeMutableBufferPointer { keywords in
            valuePointers.withUnsafeMutableBufferPointer { values in
                keywords.withMemoryRebound(to: UnsafePointer<CChar>?.self) { k in
                    values.withMemoryRebound(to: UnsafePointer<CChar>?.self) { v in
                        PQconnectdbParams(k.baseAddress, v.baseAddress, 1)
                    }
                }
            }
        }
        guard let conn else {
            throw PostgresError(kind: .connection, message: "out of memory allocating a libpq connection")
        }
        guard PQstatus(conn) == CONNECTION_OK else {
            let message = Connection.trimmed(PQerrorMessage(conn))
            PQfinish(conn)
            throw PostgresError(kind: .connection, message: message.isEmpty ? "could not connect" : message)
        }
        // libpq prints server NOTICEs to stderr by default ("… already exists, skipping"); they
        // are not errors and nothing here acts on them.
        PQsetNoticeReceiver(conn, { _, _ in }, nil)
        handle = conn
        canceller = Canceller(connection: conn)
    }

    deinit { close() }

    public func close() {
        if let handle { PQfinish(handle) }
        handle = nil
        prepared.removeAll()
    }

    /// False once the connection is closed or libpq has seen it break.
    public var isOpen: Bool {
        guard let handle else { return false }
        return PQstatus(handle) == CONNECTION_OK
    }

    /// Checks, without a round trip, that an idle connection has not been closed by the server
    /// (restart, idle timeout, terminated backend): if its socket is readable, something arrived
    /// while idle — either a notice we can absorb or the end of the connection.
    public func isAliveWhileIdle() -> Bool {
        guard let handle, PQstatus(handle) == CONNECTION_OK else { return false }
        // A terminated backend first sends its FATAL message, then closes: libpq notices the
        // close only on a later read, so read while the socket stays readable.
        for _ in 0..<4 {
            var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 0)
            if ready < 0 { return false }
            if ready == 0 { return true }
            if PQconsumeInput(handle) == 0 || PQstatus(handle) != CONNECTION_OK { return false }
        }
        return PQstatus(handle) == CONNECTION_OK
    }

    /// True when no transaction is open: the state a connection must be in to be reused.
    public var isIdleOutsideTransaction: Bool {
        guard let handle else { return false }
        return PQtransactionStatus(handle) == PQTRANS_IDLE
    }


    /// The connection's socket, for waiting on notifications.
    public var socket: Int32 { handle.map { PQsocket($0) } ?? -1 }

    /// Runs a parameterised statement, prepared once per connection and reused after that.
    /// Parameters are sent as text; nil is SQL NULL. The whole result is held in memory: for one
    /// that may be large, `query(_:_:maxBytes:eachValue:)` reads it a row at a time, with a limit.
    @discardableResult
    public func query(_ sql: String, _ parameters: [String?] = []) throws -> QueryResult {
        try preparingAgainIfReplaced(sql) { try preparedStatement(sql, parameters) { try consumeSent($0) } }
    }

    /// Runs `body`, which uses the statement prepared for `sql`, once more after preparing it
    /// again if a migration replaced what it refers to: the server refuses such a statement
    /// before running anything (no row has come), so the retry is safe.
    private func preparingAgainIfReplaced<T>(_ sql: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as PostgresError where error.invalidatesPreparedStatement {
            if let name = prepared.removeValue(forKey: sql) { _ = try? queryOnce("DEALLOCATE " + name) }
            return try body()
        }
    }

    /// `query(_:_:)` for a statement whose rows are one value each (`SELECT * FROM f()` of a
    /// function returning a set of json), read one row at a time (libpq's single-row mode), so a
    /// huge result never sits in memory whole: each row's first column goes to `value` as libpq's
    /// own bytes (nil for NULL), valid only during that call, on this thread. No String is made:
    /// a caller that only passes the text on (the server's replies) copies it once, where it goes.
    /// Once the rows' bytes pass `maxBytes` no more values are handed over, the rest are read and
    /// dropped, and the answer says `cut`; a caller drops what it kept. Rows come before the
    /// commit (see `consumeSent`): if this throws, whatever was handed over was never committed.
    public func query(_ sql: String, _ parameters: [String?], maxBytes: Int,
                      eachValue value: (UnsafeBufferPointer<UInt8>?) -> Void) throws -> (rows: Int, cut: Bool) {
        var rows = 0
        let last = try preparingAgainIfReplaced(sql) {
            rows = 0
            return try preparedStatement(sql, parameters) { handle in
                try consumeSent(handle, cuttingAt: maxBytes) { result in
                    rows += 1
                    if PQgetisnull(result, 0, 0) == 1 { value(nil); return }
                    let bytes = UnsafeRawPointer(PQgetvalue(result, 0, 0)!).assumingMemoryBound(to: UInt8.self)
                    value(UnsafeBufferPointer(start: bytes, count: Int(PQgetlength(result, 0, 0))))
                }
            }
        }
        // A statement that returned its rows in one final result (none in single-row mode).
        for row in last.result.rows {
            rows += 1
            guard var text = row.first ?? nil else { value(nil); continue }
            text.withUTF8 { value($0) }
        }
        return (rows, last.cut)
    }

    /// Prepares `sql` once per connection, sends it with `parameters` and reads its answer with
    /// `receive`.
    private func preparedStatement<T>(_ sql: String, _ parameters: [String?], receive: (OpaquePointer) throws -> T) throws -> T {
        let handle = try openHandle()
        let name: String
        if let existing = prepared[sql] {
            name = existing
        } else {
            name = "orderly_\(nextStatement)"
            nextStatement += 1
            _ = try consume(PQprepare(handle, name, sql, Int32(parameters.count), nil))
            prepared[sql] = name
        }
        return try withParameters(parameters) { values in
            // Sent and read in two steps (PQexecPrepared does the same inside) so that a broken
            // connection can be told apart: before sending, the statement surely did not run.
            guard PQsendQueryPrepared(handle, name, Int32(parameters.count), values, nil, nil, 0) == 1 else {
                throw PostgresError(kind: .connection, message: Connection.trimmed(PQerrorMessage(handle)))
            }
            return try receive(handle)
        }
    }

    /// Reads the result of a statement already sent (and whatever follows it, until libpq says
    /// there is no more). A connection that breaks now leaves the statement's outcome unknown.
    ///
    /// The rows come before the commit: a statement outside a transaction block is committed at
    /// the Sync that follows it, after its rows and its CommandComplete, so a commit that fails
    /// (a deferred constraint or trigger, a serialization failure, the server going down) arrives
    /// as an error after a successful result. That error is the answer: the rows were never
    /// committed.
    private func consumeSent(_ handle: OpaquePointer) throws -> QueryResult {
        var outcome: Result<QueryResult, Error>?
        while let result = PQgetResult(handle) {
            if outcome == nil || Connection.failsAfterSuccess(result, outcome) {
                outcome = Result { try consume(result) }
            } else {
                PQclear(result)
            }
        }
        return try settle(outcome, handle)
    }

    /// Whether `result` is an error that follows a successful result (see `consumeSent`).
    private static func failsAfterSuccess(_ result: OpaquePointer, _ outcome: Result<QueryResult, Error>?) -> Bool {
        guard case .success = outcome else { return false }
        let status = PQresultStatus(result)
        return status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE
    }

    /// `consumeSent` in single-row mode (switched on here, right after sending): one PGresult per
    /// row, each handed to `row` while the rows' bytes (every column's) add up to at most
    /// `maxBytes`; past that, `cut`, and the rest are read and dropped. Returns the final result
    /// (no rows in single-row mode, unless the statement was not a query).
    private func consumeSent(_ handle: OpaquePointer, cuttingAt maxBytes: Int,
                             row: (OpaquePointer) -> Void) throws -> (result: QueryResult, cut: Bool) {
        _ = PQsetSingleRowMode(handle)
        var outcome: Result<QueryResult, Error>?
        var bytes = 0
        var cut = false
        while let result = PQgetResult(handle) {
            if Connection.failsAfterSuccess(result, outcome) {
                outcome = Result { try consume(result) }
                continue
            }
            guard outcome == nil else {
                PQclear(result)
                continue
            }
            if PQresultStatus(result) == PGRES_SINGLE_TUPLE {
                defer { PQclear(result) }
                if cut { continue }
                for column in 0..<PQnfields(result) { bytes += Int(PQgetlength(result, 0, column)) }
                if bytes > maxBytes { cut = true } else { row(result) }
                continue
            }
            outcome = Result { try consume(result) }
        }
        return (try settle(outcome, handle), cut)
    }

    private func settle(_ outcome: Result<QueryResult, Error>?, _ handle: OpaquePointer) throws -> QueryResult {
        guard let outcome else {
            var error = PostgresError(kind: .connection, message: Connection.trimmed(PQerrorMessage(handle)))
            error.outcomeUnknown = true
            throw error
        }
        do {
            return try outcome.get()
        } catch var error as PostgresError where error.isConnectionFailure {
            // Lost, or ended by the server (57P01 …) instead of an answer: the end may have come
            // just after a commit, so an error of this kind does not prove that nothing happened.
            error.outcomeUnknown = true
            throw error
        }
    }

    /// Runs a parameterised statement without preparing it: for one-off statements.
    @discardableResult
    public func queryOnce(_ sql: String, _ parameters: [String?] = []) throws -> QueryResult {
        let handle = try openHandle()
        return try withParameters(parameters) { values in
            try consume(PQexecParams(handle, sql, Int32(parameters.count), nil, values, nil, nil, 0))
        }
    }

    /// Runs a script of several statements with no parameters (simple query protocol). Only for
    /// trusted text such as migration files — never for anything a client sent.
    public func executeScript(_ sql: String) throws {
        let handle = try openHandle()
        _ = try consume(PQexec(handle, sql))
    }

    /// Notifications that arrived with the last results or `consumeInput()`.
    public func drainNotifications() -> [(channel: String, payload: String)] {
        guard let handle else { return [] }
        var found: [(String, String)] = []
        while let notify = PQnotifies(handle) {
            found.append((String(cString: notify.pointee.relname), String(cString: notify.pointee.extra)))
            PQfreemem(notify)
        }
        return found
    }

    /// Reads whatever the server sent (notifications) without blocking.
    public func consumeInput() throws {
        let handle = try openHandle()
        if PQconsumeInput(handle) == 0 || PQstatus(handle) != CONNECTION_OK {
            throw PostgresError(kind: .connection, message: Connection.trimmed(PQerrorMessage(handle)))
        }
    }

    // MARK: - Internals

    private func openHandle() throws -> OpaquePointer {
        guard let handle else { throw PostgresError(kind: .connection, message: "connection is closed") }
        return handle
    }

    /// Hands `parameters` to libpq as C strings, and blanks their values out of any error the
    /// statement raises (see `PostgresError.redact`).
    private func withParameters<T>(_ parameters: [String?], _ body: ([UnsafePointer<CChar>?]) throws -> T) throws -> T {
        let copies = parameters.map { $0.flatMap { strdup($0) } }
        defer { copies.forEach { free($0) } }
        do {
            return try body(copies.map { $0.map { UnsafePointer($0) } })
        } catch var error as PostgresError {
            error.redact(parameters)
            throw error
        }
    }

    /// Turns a PGresult into rows or a `PostgresError`, and frees it.
    private func consume(_ result: OpaquePointer?) throws -> QueryResult {
        guard let result else {
            throw PostgresError(kind: .connection, message: Connection.trimmed(PQerrorMessage(handle)))
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return Connection.rows(of: result)
        default:
            throw error(from: result)
        }
    }

    private func error(from result: OpaquePointer) -> PostgresError {
        func field(_ code: Character) -> String? {
            guard let value = PQresultErrorField(result, Int32(code.asciiValue!)) else { return nil }
            return String(cString: value)
        }
        let sqlState = field("C")
        let message = field("M") ?? Connection.trimmed(PQresultErrorMessage(result))
        let broken = handle.map { PQstatus($0) != CONNECTION_OK } ?? true
        return PostgresError(
            kind: broken && sqlState == nil ? .connection : .query,
            sqlState: sqlState, message: message, detail: field("D"), hint: field("H"))
    }

    private static func rows(of result: OpaquePointer) -> QueryResult {
        let columnCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        let columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
        var rows: [[String?]] = []
        rows.reserveCapacity(rowCount)
        for r in 0..<Int32(rowCount) {
            var row: [String?] = []
            row.reserveCapacity(columnCount)
            for c in 0..<Int32(columnCount) {
                if PQgetisnull(result, r, c) == 1 {
                    row.append(nil)
                } else {
                    let length = Int(PQgetlength(result, r, c))
                    let bytes = UnsafeRawPointer(PQgetvalue(result, r, c)!).assumingMemoryBound(to: UInt8.self)
                    row.append(String(decoding: UnsafeBufferPointer(start: bytes, count: length), as: UTF8.self))
                }
            }
            rows.append(row)
        }
        let tag = PQcmdStatus(result).map { String(cString: $0) } ?? ""
        return QueryResult(columns: columns, rows: rows, commandTag: tag)
    }

    private static func trimmed(_ message: UnsafePointer<CChar>?) -> String {
        guard let message else { return "" }
        return String(cString: message).trimmingCharacters(in: " \n\r\t")
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> String {
        let characters = Set(set)
        var view = Substring(self)
        while let first = view.first, characters.contains(first) { view = view.dropFirst() }
        while let last = view.last, characters.contains(last) { view = view.dropLast() }
        return String(view)
    }
}
