import Foundation
import NIOConcurrencyHelpers

/// A token bucket per key (a client address): `perMinute` requests a minute on average, bursts
/// of up to `burst`. Keys whose bucket has filled up again are forgotten once the table grows,
/// so a flood of addresses cannot grow it without bound.
final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: Double
    }

    private let perSecond: Double
    private let burst: Double
    private let buckets = NIOLockedValueBox([String: Bucket]())
    private let maxKeys = 10_000

    init(perMinute: Int, burst: Int? = nil) {
        perSecond = Double(max(1, perMinute)) / 60
        self.burst = Double(max(1, burst ?? max(1, perMinute / 6)))
    }

    /// Takes a token for key; nil if allowed, else the seconds until the next token.
    func take(_ key: String, now: Double = ProcessInfo.processInfo.systemUptime) -> Int? {
        buckets.withLockedValue { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: burst, updated: now)
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * perSecond)
            bucket.updated = now
            defer {
                buckets[key] = bucket
                if buckets.count > maxKeys {
                    let full = burst, rate = perSecond
                    buckets = buckets.filter { min(full, $0.value.tokens + (now - $0.value.updated) * rate) < full }
                }
            }
            guard bucket.tokens >= 1 else { return Int(((1 - bucket.tokens) / perSecond).rounded(.up)) }
            bucket.tokens -= 1
            return nil
        }
    }
}
