import Dispatch
import Foundation

/// How many threads the numeric kernels use, and a deterministic parallel loop.
///
/// Work is always split into the same chunks for a given `threads`, so results are
/// reproducible for a fixed thread count; reductions split independently of it (see
/// `reductionChunks`), so sums do not change with the thread count either.
public enum Parallel {
    nonisolated(unsafe) private static var _threads: Int = {
        if let env = ProcessInfo.processInfo.environment["PALIMPSEST_THREADS"], let n = Int(env), n > 0 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// A thread budget bound to the current thread / task by `withThreads` (nil: the global one).
    @TaskLocal static var scoped: Int?

    /// Threads used by kernels (default: every core, or `PALIMPSEST_THREADS`). Inside
    /// `withThreads(n)` it reads `n` on that thread; setting it changes the global default.
    public static var threads: Int {
        get { scoped ?? _threads }
        set { precondition(newValue > 0, "Parallel.threads must be > 0, got \(newValue)"); _threads = newValue }
    }

    /// The global default, whatever `withThreads` binds on the current thread.
    public static var globalThreads: Int { _threads }

    /// Runs `body` with `threads` reading `n` on the calling thread (and in code it calls
    /// synchronously), leaving other threads and the global default alone: several units of an
    /// experiment each get their share of the cores.
    public static func withThreads<R>(_ n: Int, _ body: () throws -> R) rethrows -> R {
        precondition(n > 0, "Parallel.withThreads needs n > 0, got \(n)")
        return try $scoped.withValue(n) { try body() }
    }

    @usableFromInline static let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Most chunks a reduction is split into. Fixed, not the thread count: partial sums
    /// combined in chunk order then give the same bits with 1, 2 or 64 threads.
    public static let reductionChunks = 16

    /// Runs `body(i)` for `i` in `0..<count`, using up to `threads` threads.
    /// `body` must only write to memory owned by iteration `i`.
    @inlinable
    public static func forEach(_ count: Int, threads: Int = Parallel.threads, _ body: (Int) -> Void) {
        if count <= 0 { return }
        if count == 1 || threads <= 1 {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            if #available(macOS 15, *) {
                let parts = Swift.min(count, threads, cores)
                let done = parts == count
                    ? WorkerPool.shared.run(count: count, threads: parts) { i in body(i) }
                    : WorkerPool.shared.run(count: parts, threads: parts) { t in
                        for i in range(t, of: parts, total: count) { body(i) }
                    }
                if done { return }
            }
            if threads >= count || threads >= cores {
                // Dispatch runs at most one thread per core: as before, items go to threads as they come.
                DispatchQueue.concurrentPerform(iterations: count) { i in body(i) }
            } else {
                // More items than threads: each of `threads` workers takes a contiguous run, so a
                // unit given 2 threads of a 16-core machine uses 2.
                DispatchQueue.concurrentPerform(iterations: threads) { t in
                    for i in range(t, of: threads, total: count) { body(i) }
                }
            }
        }
    }

    /// Splits `0..<total` into `parts` contiguous ranges (the first ones one longer).
    @inlinable
    public static func range(_ part: Int, of parts: Int, total: Int) -> Range<Int> {
        let base = total / parts, extra = total % parts
        let start = part * base + min(part, extra)
        return start..<(start + base + (part < extra ? 1 : 0))
    }
}
