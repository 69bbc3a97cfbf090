import NIOCore

/// Runs a task's jobs on one event loop. A task that talks over one connection prefers that
/// connection's loop: what it reads arrives there and what it writes leaves from there, so it no
/// longer hops to Swift's cooperative threads and back around every request (two thread
/// wake-ups fewer per request; on a busy machine the hops cost more than the work itself).
/// Nothing that blocks may run under it: orderlyd's libpq calls stay on the pool's threads.
public final class EventLoopExecutor: TaskExecutor, @unchecked Sendable {
    private let loop: EventLoop

    public init(_ loop: EventLoop) { self.loop = loop }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        loop.execute { job.runSynchronously(on: executor) }
    }
}
