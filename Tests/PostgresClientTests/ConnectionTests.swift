import Glibc
import NIOPosix
import OrderlyTestSupport
import PostgresClient
import Testing

/// Runs blocking libpq work where blocking is allowed.
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await NIOThreadPool.singleton.runIfActive(body)
}

@Suite struct ConnectionTests {
    @Test func parametersRoundTripAsText() async throws {
        try await withTestDatabase(migrated: false) { database in
            let result = try await blocking {
                let connection = try Connection(config: database.config)
                return try connection.query("SELECT $1::text AS a, $2::int + 1 AS b, $3::text AS c, $4::text IS NULL AS d",
                                            ["张伟 'quoted' \"x\"; DROP TABLE y", "41", "", nil])
            }
            #expect(result.columns == ["a", "b", "c", "d"])
            #expect(result.rows == [["张伟 'quoted' \"x\"; DROP TABLE y", "42", "", "t"]])
            #expect(result.value(0, "b") == "42")
            #expect(result.commandTag == "SELECT 1")
        }
    }

    /// A statement's rows arrive before its transaction commits (extended protocol: the commit
    /// happens at Sync, after the rows), so a commit that fails must turn the answer into that
    /// failure: here a deferred unique check, which fires at commit. Both ways of reading (whole
    /// and row by row with a byte limit) must report it, and nothing may stay in the table.
    @Test func aCommitThatFailsAfterTheRowsIsTheAnswer() async throws {
        try await withTestDatabase(migrated: false) { database in
            let (whole, rowByRow, left) = try await blocking {
                let connection = try Connection(config: database.config)
                try connection.queryOnce("CREATE TABLE deferred_probe (x int UNIQUE DEFERRABLE INITIALLY DEFERRED)")
                try connection.queryOnce("INSERT INTO deferred_probe VALUES (1)")
                let insert = "INSERT INTO deferred_probe VALUES ($1::int) RETURNING x"
                func outcome(_ body: () throws -> QueryResult) -> String {
                    do { return "rows \(try body().rows)" } catch let error as PostgresError { return error.sqlState ?? "no state" } catch { return "\(error)" }
                }
                let whole = outcome { try connection.query(insert, ["1"]) }
                var handedOver = 0
                let rowByRow = outcome {
                    _ = try connection.query(insert, ["1"], maxBytes: 1000) { _ in handedOver += 1 }
                    return QueryResult(columns: [], rows: [], commandTag: "")
                }
                let left = try connection.query("SELECT count(*)::text FROM deferred_probe").rows
                return (whole, rowByRow + " after \(handedOver) row", left)
            }
            #expect(whole == "23505", "the commit's unique violation, not the rows before it")
            #expect(rowByRow == "23505 after 1 row", "row by row too: the commit's error, after the row it saw")
            #expect(left == [["1"]], "neither insert committed")
        }
    }

    @Test func aResultPastItsByteLimitComesBackCutAndTheConnectionGoesOn() async throws {
        try await withTestDatabase(migrated: false) { database in
            let (small, large, after) = try await blocking {
                let connection = try Connection(config: database.config)
                // 100 rows of 100 bytes: 10 000 bytes in all.
                let sql = "SELECT repeat('x', 100) FROM generate_series(1, $1::int)"
                var smallValues = 0, largeValues = 0
                let small = try connection.query(sql, ["10"], maxBytes: 5000) { _ in smallValues += 1 }
                let large = try connection.query(sql, ["100"], maxBytes: 5000) { _ in largeValues += 1 }
                let after = try connection.query("SELECT 1")
                return ("\(small.rows) rows, \(smallValues) handed over, cut \(small.cut)",
                        "\(largeValues) handed over, cut \(large.cut)", after)
            }
            #expect(small == "10 rows, 10 handed over, cut false")
            #expect(large == "50 handed over, cut true", "the values up to the limit, then none; the caller drops them")
            #expect(after.rows == [["1"]], "the rest was read: the connection is ready for the next statement")
        }
    }

    @Test func valuesAreHandedOverAsTheBytesPostgreSQLSent() async throws {
        try await withTestDatabase(migrated: false) { database in
            let (values, answer, after) = try await blocking {
                let connection = try Connection(config: database.config)
                var values: [String?] = []
                // UTF-8 whatever the database's own encoding: the connection asks for it.
                let answer = try connection.query("SELECT * FROM unnest(ARRAY[$1::json, NULL, '[1,  2]'::json])",
                                                  [#"{"name" : "张伟 😀"}"#], maxBytes: 1000) { bytes in
                    values.append(bytes.map { String(decoding: $0, as: UTF8.self) })
                }
                let after = try connection.query("SELECT current_setting('client_encoding')").scalar
                return (values, "\(answer.rows) rows, cut \(answer.cut)", after)
            }
            #expect(values == [#"{"name" : "张伟 😀"}"#, nil, "[1,  2]"])
            #expect(answer == "3 rows, cut false")
            #expect(after == "UTF8")
        }
    }

    @Test func jsonTextIsHandedOnUntouched() async throws {
        try await withTestDatabase(migrated: false) { database in
            let json = #"{"b" :  [1, 2.50],   "a": "é\n"}"#
            let text = try await blocking {
                try Connection(config: database.config).query("SELECT $1::json", [json]).scalar
            }
            #expect(text == json)
        }
    }

    @Test func preparedStatementsAreReused() async throws {
        try await withTestDatabase(migrated: false) { database in
            let count = try await blocking {
                let connection = try Connection(config: database.config)
                for i in 0..<5 { _ = try connection.query("SELECT $1::int", [String(i)]) }
                return try connection.query("SELECT count(*) FROM pg_prepared_statements").scalar
            }
            #expect(count == "2")
        }
    }

    @Test func serverErrorsCarryTheirFieldsButNotTheParameters() async throws {
        try await withTestDatabase(migrated: false) { database in
            let error = try await blocking { () -> PostgresError? in
                let connection = try Connection(config: database.config)
                do {
                    _ = try connection.query("SELECT $1::int", ["secret-value-123"])
                    return nil
                } catch let error as PostgresError {
                    #expect(connection.isOpen)
                    return error
                }
            }
            let failure = try #require(error)
            #expect(failure.kind == .query)
            #expect(failure.sqlState == "22P02")
            #expect(failure.message.contains("integer"))
            #expect(!failure.description.contains("secret-value-123"))
        }
    }

    @Test func customSQLStatesArriveIntact() async throws {
        try await withTestDatabase(migrated: false) { database in
            let error = try await blocking { () -> PostgresError? in
                let connection = try Connection(config: database.config)
                do {
                    try connection.executeScript("DO $$ BEGIN RAISE EXCEPTION 'no such order' USING ERRCODE = 'OL404', HINT = 'check the id'; END $$")
                    return nil
                } catch let error as PostgresError { return error }
            }
            #expect(error?.sqlState == "OL404")
            #expect(error?.message == "no such order")
            #expect(error?.hint == "check the id")
        }
    }

    @Test func refusedConnectionIsAConnectionError() async throws {
        let error = try await blocking { () -> PostgresError? in
            do {
                _ = try Connection(config: ConnectionConfig(url: "postgresql://nobody@127.0.0.1:1/none", connectTimeoutSeconds: 2))
                return nil
            } catch let error as PostgresError { return error }
        }
        #expect(error?.kind == .connection)
        #expect(error?.isConnectionFailure == true)
    }
}

@Suite struct KeepaliveTests {
    /// A TCP connection probes a silent peer and gives up on unacknowledged data, so a network
    /// partition ends it (the LISTEN connection then reconnects) instead of hanging for ever.
    @Test func tcpConnectionsProbeASilentPeer() async throws {
        try await withTestDatabase(migrated: false) { database in
            let settings = try await blocking {
                let connection = try Connection(config: ConnectionConfig(url: "host=127.0.0.1 dbname=\(database.name)"))
                defer { connection.close() }
                func option(_ level: Int32, _ name: Int32) -> Int32 {
                    var value: Int32 = -1
                    var length = socklen_t(MemoryLayout<Int32>.size)
                    _ = getsockopt(connection.socket, level, name, &value, &length)
                    return value
                }
                return [option(SOL_SOCKET, SO_KEEPALIVE), option(Int32(IPPROTO_TCP), TCP_KEEPIDLE),
                        option(Int32(IPPROTO_TCP), TCP_KEEPINTVL), option(Int32(IPPROTO_TCP), TCP_KEEPCNT),
                        option(Int32(IPPROTO_TCP), TCP_USER_TIMEOUT)]
            }
            #expect(settings == [1, 30, 10, 3, 60_000])
        }
    }
}
