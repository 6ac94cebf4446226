import Dispatch
import Foundation

/// How many threads the numeric kernels use, and a deterministic parallel loop.
///
/// Work is always split into the same chunks for a given `threads`, so results are
/// reproducible for a fixed thread count.
public enum Parallel {
    nonisolated(unsafe) private static var _threads: Int = {
        if let env = ProcessInfo.processInfo.environment["PALIMPSEST_THREADS"], let n = Int(env), n > 0 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// Threads used by kernels (default: every core, or `PALIMPSEST_THREADS`).
    public static var threads: Int {
        get { _threads }
        set { precondition(newValue > 0, "Parallel.threads must be > 0, got \(newValue)"); _threads = newValue }
    }

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
            DispatchQueue.concurrentPerform(iterations: count) { i in body(i) }
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
