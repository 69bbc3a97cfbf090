import NIOConcurrencyHelpers
import OrderlyClient
import OrderlyServer
import OrderlyTestSupport
import Testing

/// A small, seeded generator, so that a failure can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
}

enum FuzzLines {
    static let seeds: [String] = [
        "PING", "WHOAMI", "HELP", "HELP whoami", "HELLO", "INBOX unread=true limit=5", "INBOX ACK all",
        "INBOX limit=-1", "INBOX before=\"x\"", #"X lines=[{"sku":"PHN-128","qty":3}] note="a b""#,
        #"ORDER CREATE customer=1 lines=[{"sku":"A","qty":1e999}]"#, "STATS", "nope nope", "\"just a string\"",
        #"{"a":[1,2,{"b":null}]}"#, "k=v k=v", "a=\"\\ud800\"", "ping\t\tping",
    ]

    /// One request line (never containing `\n`): a seed, a mutation of one, or noise.
    static func make(_ rng: inout SplitMix64, maxLine: Int) -> [UInt8] {
        var bytes = Array(seeds.randomElement(using: &rng)!.utf8)
        switch Int.random(in: 0..<10, using: &rng) {
        case 0:  // random bytes, any value but newline
            bytes = (0..<Int.random(in: 0..<200, using: &rng)).map { _ in
                var byte = UInt8.random(in: 0...255, using: &rng)
                if byte == 0x0A { byte = 0x0B }
                return byte
            }
        case 1:  // corrupt a few bytes
            for _ in 0..<Int.random(in: 1...4, using: &rng) where !bytes.isEmpty {
                var byte = UInt8.random(in: 0...255, using: &rng)
                if byte == 0x0A { byte = 0x00 }
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = byte
            }
        case 2:  // cut it short: unbalanced quotes and JSON
            bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &rng)))
        case 3:  // a huge token, sometimes over the line limit
            let size = Int.random(in: 1_000...(maxLine + 2_000), using: &rng)
            bytes += [UInt8(ascii: " "), UInt8(ascii: "q"), UInt8(ascii: "=")] + Array(repeating: UInt8(ascii: "z"), count: size)
        case 4:  // deep nesting
            bytes = Array("X a=".utf8) + Array(repeating: UInt8(ascii: "["), count: Int.random(in: 1...200, using: &rng))
        case 5:  // invalid UTF-8 tail
            bytes += [0xC3, 0x28, 0xFF]
        default:
            break
        }
        return bytes
    }
}

@Suite struct FuzzTests {
    @Test func everyLineGetsExactlyOneFinalReplyAndOthersAreStillServed() async throws {
        let maxLine = 8 * 1024
        try await withTestServer(configure: {
            $0.limits.maxLineBytes = maxLine
            $0.maxOversizedLines = .max  // here every line must be answered, none may close the connection
        }) { server in
            try await server.database.createUser("fuzz", password: "fuzz-password", roles: ["warehouse"])
            let bystanderServed = NIOLockedValueBox(0)
            let stop = NIOLockedValueBox(false)
            async let bystander: Void = {
                let client = try await server.connect(as: "fuzz", password: "fuzz-password")
                while !stop.withLockedValue({ $0 }) {
                    #expect(try await client.request("PING").final == "+PONG")
                    bystanderServed.withLockedValue { $0 += 1 }
                    try await Task.sleep(for: .milliseconds(50))
                }
                await client.close()
            }()

            let fuzzer = try await RawClient.connect(port: server.port, reading: true)
            _ = try await fuzzer.write(Array("AUTH fuzz fuzz-password\n".utf8)).get()
            var rng = SplitMix64(state: 0x5EED_0DE1)
            let total = 100_000
            var sent = 1
            while sent < total + 1 {
                // A pipelined burst of up to 500 lines in one write.
                var burst: [UInt8] = []
                for _ in 0..<min(500, total + 1 - sent) {
                    burst += FuzzLines.make(&rng, maxLine: maxLine) + [UInt8(ascii: "\n")]
                    sent += 1
                }
                _ = try await fuzzer.write(burst).get()
                let expected = sent
                try await waitUntil(seconds: 60) { fuzzer.finalLineCount >= expected || fuzzer.isClosed }
            }
            stop.withLockedValue { $0 = true }
            try await bystander
            #expect(!fuzzer.isClosed)
            #expect(fuzzer.finalLineCount == total + 1)
            #expect(!fuzzer.text.contains("-INTERNAL"))
            #expect(bystanderServed.withLockedValue { $0 } > 0)
            // Still a working session after all that.
            _ = try await fuzzer.write(Array("PING\n".utf8)).get()
            try await waitUntil { fuzzer.text.hasSuffix("+PONG\n") }
            #expect(fuzzer.text.hasSuffix("+PONG\n"))
            await fuzzer.close()
        }
    }
}
