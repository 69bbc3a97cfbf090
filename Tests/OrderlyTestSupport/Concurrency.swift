import OrderlyClient

/// The next pushed event of a connection made with `events: .stream`, or nil if none comes
/// within `seconds` (a generous bound: it only keeps a broken test from hanging).
public func nextEvent(_ events: AsyncStream<String>, within seconds: Double = 20) async -> String? {
    await withTaskGroup(of: String?.self) { group in
        group.addTask {
            var iterator = events.makeAsyncIterator()
            return await iterator.next()
        }
        group.addTask {
            try? await Task.sleep(for: .seconds(seconds))
            return nil
        }
        let first = await group.next() ?? nil
        group.cancelAll()
        return first
    }
}

/// `count` connections, each logged in as `users[i % users.count]`, send `line(i)` at the
/// same moment (all are logged in before the first sends). The replies, in connection order.
public func raceRequests(_ server: TestServer, _ count: Int, users: [(name: String, password: String)],
                         _ line: @escaping @Sendable (Int) -> String) async throws -> [Response] {
    let gate = Gate()
    let (ready, arrived) = AsyncStream.makeStream(of: Void.self)
    return try await withThrowingTaskGroup(of: (Int, Response).self) { group in
        for index in 0..<count {
            let user = users[index % users.count]
            group.addTask {
                let client = try await server.connect(as: user.name, password: user.password)
                arrived.yield()
                await gate.wait()
                let reply = try await client.request(line(index))
                await client.close()
                return (index, reply)
            }
        }
        var connected = 0
        for await _ in ready {
            connected += 1
            if connected == count { break }
        }
        await gate.open()
        var replies = [Response?](repeating: nil, count: count)
        for try await (index, reply) in group { replies[index] = reply }
        return replies.compactMap { $0 }
    }
}

/// Polls `condition` until it holds; fails after 30 s (a generous bound: it only keeps a broken
/// test from hanging, and says what it was waiting for).
public func waitUntil(_ what: String, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(30)
    while try await !condition() {
        guard ContinuousClock.now < deadline else { throw TestFailure("timed out waiting until \(what)") }
        try await Task.sleep(for: .milliseconds(50))
    }
}
