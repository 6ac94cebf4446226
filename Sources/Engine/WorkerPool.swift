import Foundation
import Synchronization

/// Persistent helper threads for the kernels' parallel regions.
///
/// A training step of a small model runs hundreds of short parallel regions (each GEMM packs,
/// then multiplies). Handing each to Dispatch costs 15–20 µs of wake-up and hand-back per region
/// (measured with 4 items of 10–600 µs on 2 threads), a few percent of a `tiny` step. These
/// threads instead spin for a short while (`spinNanoseconds`) after each region, so the next one
/// starts at once, and sleep when the kernels go quiet.
///
/// One region runs at a time: a call while another runs (a nested region, or concurrent
/// experiment units) gets `false` and does its work some other way. Which thread runs an item
/// never changes a result.
@available(macOS 15, *)
@usableFromInline
final class WorkerPool: @unchecked Sendable {
    /// `PALIMPSEST_WORKER_POOL=off` leaves every region to Dispatch (no spinning threads).
    @usableFromInline static let shared = WorkerPool(
        helpers: ProcessInfo.processInfo.environment["PALIMPSEST_WORKER_POOL"] == "off" ? 0 : Parallel.cores - 1)

    /// How long an idle helper keeps looking for the next region before it sleeps.
    static let spinNanoseconds: UInt64 = 200_000

    private final class Job: @unchecked Sendable {
        let count: Int
        let helpers: Int
        let body: (Int) -> Void
        let next = Atomic<Int>(0)
        let unfinished: Atomic<Int>
        let inside = Atomic<Int>(0)
        init(count: Int, helpers: Int, body: @escaping (Int) -> Void) {
            self.count = count
            self.helpers = helpers
            self.body = body
            unfinished = Atomic(count)
        }

        func work() {
            while true {
                let item = next.add(1, ordering: .relaxed).oldValue
                if item >= count { return }
                body(item)
                unfinished.subtract(1, ordering: .releasing)
            }
        }
    }

    private let helpers: Int
    private let busy = Atomic<Bool>(false)
    private let generation = Atomic<Int>(0)
    private let condition = NSCondition()
    /// The running region (guarded by `condition`).
    private var job: Job?

    private init(helpers: Int) {
        self.helpers = max(0, helpers)
        for index in 0..<self.helpers {
            let thread = Thread { [unowned self] in self.helperLoop(index) }
            thread.name = "palimpsest-kernel-\(index + 1)"
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    /// Runs `body(item)` for every item on the caller and up to `threads - 1` helpers; returns
    /// once every item has finished and no helper still holds `body`. `false` (nothing run) when
    /// another region is running or there are no helpers.
    @usableFromInline
    func run(count: Int, threads: Int, _ body: @escaping (Int) -> Void) -> Bool {
        if helpers == 0 || threads < 2 { return false }
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { busy.store(false, ordering: .releasing) }
        let job = Job(count: count, helpers: min(threads - 1, helpers), body: body)
        condition.lock()
        self.job = job
        generation.add(1, ordering: .releasing)
        condition.broadcast()
        condition.unlock()
        job.work()
        var spins = 0
        while job.unfinished.load(ordering: .acquiring) > 0 {
            spins += 1
            if spins & 255 == 0 { sched_yield() }
        }
        // No helper may join once the slot is empty; wait for those inside to let go of `body`.
        condition.lock()
        self.job = nil
        condition.unlock()
        while job.inside.load(ordering: .acquiring) > 0 { sched_yield() }
        return true
    }

    private func helperLoop(_ index: Int) {
        var seen = generation.load(ordering: .acquiring)
        while true {
            // Spin for the next region, then sleep until one is published.
            let start = DispatchTime.now().uptimeNanoseconds
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                if spins & 1023 == 0 && DispatchTime.now().uptimeNanoseconds - start > Self.spinNanoseconds {
                    condition.lock()
                    while generation.load(ordering: .acquiring) == seen { condition.wait() }
                    condition.unlock()
                }
            }
            condition.lock()
            seen = generation.load(ordering: .acquiring)
            var joined: Unmanaged<Job>?
            if let job, index < job.helpers {
                job.inside.add(1, ordering: .relaxed)
                joined = Unmanaged.passUnretained(job)
            }
            condition.unlock()
            // Unretained: the caller keeps the job alive until `inside` is back to 0, and this
            // thread must hold no reference to `body` once it says it has left.
            joined?._withUnsafeGuaranteedRef { job in
                job.work()
                job.inside.subtract(1, ordering: .releasing)
            }
        }
    }
}
