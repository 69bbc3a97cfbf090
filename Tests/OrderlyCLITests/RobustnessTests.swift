import OrderlyClient
import Testing

/// The client against a server that misbehaves, and events delivered on their own stream.
@Suite struct RobustnessTests {
    @Test func eventsCanArriveOnTheirOwnStream() async throws {
        try await withFakeServer { server in
            let connection = try await OrderlyConnection.connect(host: "127.0.0.1", port: server.port, events: .stream)
            server.push(#">admin.notice {"id":3,"payload":{"message":"hi"}}"#)
            var events = connection.events.makeAsyncIterator()
            #expect(await events.next() == #"admin.notice {"id":3,"payload":{"message":"hi"}}"#)
            server.push(">one {}")
            let response = try await connection.request("ROWS")
            #expect(response.events == [], "not mixed into the reply")
            #expect(response.data == [#"{"id":1,"name":"one"}"#, #"{"id":2,"name":"two"}"#])
            #expect(await events.next() == "one {}")
            await connection.close()
            #expect(await events.next() == nil)
        }
    }

    @Test func byDefaultEventsStayInTheResponse() async throws {
        try await withFakeServer { server in
            let connection = try await OrderlyConnection.connect(host: "127.0.0.1", port: server.port)
            server.push(">kind {}")
            try await Task.sleep(for: .milliseconds(100))
            let response = try await connection.request("PING")
            #expect(response.events == ["kind {}"])
            #expect(response.final == "+PONG")
            await connection.close()
        }
    }

    @Test func anOverLongLineEndsTheConnectionWithAnError() async throws {
        try await withFakeServer { server in
            let connection = try await OrderlyConnection.connect(host: "127.0.0.1", port: server.port)
            await #expect(throws: ClientError.lineTooLong(OrderlyConnection.maxLineBytes)) {
                _ = try await connection.request("HUGE")
            }
            await connection.close()
            let cli = try await CLI.run(["--port", "\(server.port)", "HUGE"])
            #expect(cli.status == 2)
            #expect(cli.stderr == "orderly: the server sent a line longer than 16777216 bytes\n")
        }
    }

    @Test func linesThatFollowNoRuleDoNotBreakTheClient() async throws {
        try await withFakeServer { server in
            let cli = try await CLI.run(["--port", "\(server.port)", "JUNK"])
            #expect(cli.status == 0)
            #expect(cli.stdout == "value\n--------\nnot json\n")
            #expect(cli.stderr == "+OK junk\n")
        }
    }

    @Test func aDroppedConnectionExitsWithTwo() async throws {
        try await withFakeServer { server in
            let result = try await CLI.run(["--port", "\(server.port)"], stdin: "PING\nDROP\nPING\n")
            #expect(result.status == 2)
            #expect(result.stdout == "+PONG\n")
            #expect(result.stderr == "orderly: the server closed the connection\n")
        }
    }
}
