import Engine
import Foundation

/// Does the work of one unit. Implementations write into `directory` (a fresh scratch
/// directory of the unit) and return named outputs; they must be deterministic for the unit.
public protocol UnitWorker: Sendable {
    func run(_ unit: PlanUnit, in directory: URL, store: RunStore, progress: @escaping @Sendable (UnitProgress) -> Void) throws -> [String: String]
}

/// Runs a plan: skips finished units, runs the others in dependency order, records each
/// completion atomically, so a run killed at any moment continues where it stopped.
///
/// Up to `concurrency` units run at once: a unit starts as soon as its dependencies are finished
/// and a slot is free (ready units in plan order). Each running unit's kernels use
/// `threadsPerUnit` threads (`Parallel.withThreads`), by default the cores divided among the units
/// that can run when it starts.
/// Results do not depend on either: kernels give the same bits with any thread count.
public struct Runner {
    public var plan: ExperimentPlan
    public var store: RunStore
    public var worker: UnitWorker
    /// Units that may run at once.
    public var concurrency: Int
    /// Kernel threads of each running unit; nil: the cores (`Parallel.globalThreads`) divided among
    /// the units that can run when it starts (at most `concurrency`).
    public var threadsPerUnit: Int?
    public var display: ProgressDisplay

    public init(plan: ExperimentPlan, store: RunStore, worker: UnitWorker, concurrency: Int = 1,
                threadsPerUnit: Int? = nil, display: ProgressDisplay? = nil) {
        self.plan = plan; self.store = store; self.worker = worker; self.concurrency = max(1, concurrency)
        self.threadsPerUnit = threadsPerUnit.map { max(1, $0) }
        self.display = display ?? ProgressDisplay(unitsTotal: plan.units.count)
    }

    public struct Summary: Equatable { public var ran: [String]; public var skipped: [String] }

    public func finished() -> Set<String> {
        Set(plan.units.filter { store.completion(of: $0) != nil }.map(\.id))
    }

    /// Runs every unfinished unit. The first failure stops new units from starting; units
    /// already running finish (and are recorded), then the failure is thrown.
    @discardableResult
    public func run() throws -> Summary {
        let done = finished()
        let skipped = plan.units.map(\.id).filter(done.contains)
        if !skipped.isEmpty { display.message("\(skipped.count) of \(plan.units.count) units already finished; continuing") }
        if concurrency > 1 {
            display.message("running up to \(concurrency) units at once, " + (threadsPerUnit.map { "\($0) thread\($0 == 1 ? "" : "s") each" } ?? "sharing \(Parallel.globalThreads) threads"))
        }
        let state = SchedulerState(done: done)
        state.lock.lock()
        while true {
            let waiting = plan.ready(done: state.done).filter { !state.running.contains($0.id) }
            // Cores are shared among the units that can run now: a unit alone (the base model)
            // gets every core, two of them half each.
            let share = threadsPerUnit ?? max(1, Parallel.globalThreads / max(1, min(concurrency, state.running.count + waiting.count)))
            for unit in waiting where state.failure == nil && state.running.count < concurrency {
                state.running.insert(unit.id)
                let work = { [self] in
                    let result = Result { share != Parallel.globalThreads ? try Parallel.withThreads(share) { try runOne(unit) } : try runOne(unit) }
                    state.lock.lock()
                    state.running.remove(unit.id)
                    switch result {
                    case .success: state.done.insert(unit.id); state.ran.append(unit.id)
                    case .failure(let error):
                        store.log(["event": "failed", "unit": unit.id, "error": "\(error)"])
                        if state.failure == nil { state.failure = (unit, error) }
                    }
                    state.lock.signal()
                    state.lock.unlock()
                }
                if concurrency == 1 {
                    // One at a time: on the calling thread, as a plain loop would.
                    state.lock.unlock(); work(); state.lock.lock()
                } else {
                    let body = UncheckedBox(work)  // `state` guards what the closure shares
                    let thread = Thread { body.value() }
                    thread.stackSize = 16 << 20
                    thread.start()
                }
            }
            if state.running.isEmpty {
                if state.failure != nil || plan.ready(done: state.done).isEmpty { break }
                continue
            }
            state.lock.wait()
        }
        let (ran, failure) = (state.ran, state.failure)
        state.lock.unlock()
        if let (unit, error) = failure {
            throw RunError(unit: unit.id, directory: store.directory(for: unit).path, underlying: "\(error)")
        }
        return Summary(ran: ran, skipped: skipped)
    }

    /// Runs exactly one unit (a Slurm task runs this): skips it when it is finished already,
    /// refuses when a dependency is not finished. Returns false when it was skipped.
    @discardableResult
    public func runUnit(_ id: String) throws -> Bool {
        guard let unit = plan.unit(id) else {
            throw StoreError(path: store.planURL.path, message: "no unit '\(id)' in the plan")
        }
        if store.completion(of: unit) != nil { return false }
        let missing = unit.dependencies.filter { dep in plan.unit(dep).map { store.completion(of: $0) == nil } ?? true }
        guard missing.isEmpty else {
            throw RunError(unit: id, directory: store.directory(for: unit).path,
                           underlying: "its dependencies are not finished: \(missing.joined(separator: ", "))")
        }
        do { try runOne(unit) } catch {
            store.log(["event": "failed", "unit": unit.id, "error": "\(error)"])
            throw RunError(unit: unit.id, directory: store.directory(for: unit).path, underlying: "\(error)")
        }
        return true
    }

    private func runOne(_ unit: PlanUnit) throws {
        let directory = store.directory(for: unit)
        try store.beginUnit(unit)
        store.log(["event": "start", "unit": unit.id, "hash": unit.hash])
        store.markStarted(unit)
        display.started(unit)
        let start = Date()
        let display = self.display
        let outputs: [String: String]
        do {
            outputs = try worker.run(unit, in: directory, store: store) { display.progress(unit, $0) }
        } catch {
            store.markFailed(unit, error: "\(error)")
            throw error
        }
        let seconds = Date().timeIntervalSince(start)
        try store.markDone(unit, seconds: seconds, outputs: outputs)
        store.clearMarkers(unit)
        display.finished(unit, seconds: seconds)
        store.log(["event": "done", "unit": unit.id, "seconds": String(format: "%.3f", seconds)])
    }
}

public struct RunError: Error, CustomStringConvertible {
    public var unit: String
    public var directory: String
    public var underlying: String
    public var description: String { "unit \(unit) failed: \(underlying)\n  (its files: \(directory); run again to retry it — finished units are kept)" }
}

private struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// What the scheduler's threads share, guarded by `lock` (also the condition finished units signal).
private final class SchedulerState: @unchecked Sendable {
    let lock = NSCondition()
    var done: Set<String>
    var running: Set<String> = []
    var ran: [String] = []
    var failure: (PlanUnit, Error)?
    init(done: Set<String>) { self.done = done }
}
