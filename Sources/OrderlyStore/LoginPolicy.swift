/// How logins are throttled (orderlyd's `--auth-*` flags). The throttling itself is SQL
/// (`sql/R__055_logins.sql`); this carries the numbers there, and says how many password checks
/// may run at once.
public struct LoginPolicy: Sendable, Equatable {
    /// Failed AUTHs for one username from one address before each further try must wait.
    public var freeFailures = 5
    /// Failures older than this no longer count.
    public var failureWindowSeconds = 900
    /// The first wait; each further failure doubles it…
    public var firstDelaySeconds = 1
    /// …up to this.
    public var maxDelaySeconds = 900
    /// Failed AUTHs from one address (any usernames) after which that address may not try again
    /// until the oldest of them leaves the window.
    public var addressFailures = 50
    /// Failed AUTHs for one username from all addresses after which every try for it waits a
    /// little (the admins are notified): a slowdown, never a lockout.
    public var accountFailures = 20
    /// The longest of those waits.
    public var accountMaxDelaySeconds = 10
    /// The share of pooled connections that may be checking passwords at once (at least one).
    public var poolShare = 0.5
    /// How long an AUTH waits for its turn at a password check before `BUSY`.
    public var waitSeconds = 10

    public init() {}

    /// Password checks allowed at once with a pool of `poolSize` connections.
    public func concurrentChecks(poolSize: Int) -> Int {
        max(1, Int((Double(poolSize) * poolShare).rounded(.down)))
    }

    /// The policy object `api.authenticate` and `api.record_auth_failure` take.
    var databaseJSON: String {
        "{\"free_failures\":\(freeFailures),\"failure_window_s\":\(failureWindowSeconds),\"first_delay_s\":\(firstDelaySeconds)," +
            "\"max_delay_s\":\(maxDelaySeconds),\"address_failures\":\(addressFailures),\"account_failures\":\(accountFailures)," +
            "\"account_max_delay_s\":\(accountMaxDelaySeconds)}"
    }
}
