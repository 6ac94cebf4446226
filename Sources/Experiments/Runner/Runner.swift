import Foundation

/// Does the work of one unit. Implementations write into `directory` (a fresh scratch
/// directory of the unit) and return named outputs; they must be deterministic for the unit.
public protocol UnitWorker: Sendable {
    func run(_ unit: PlanUnit, in directory: URL, store: RunStore, progress: @escaping @Sendable (UnitProgress) -> Void) throws -> [String: String]
}

/// Runs a plan: skips finished units, runs the others in dependency order, records each
/// completion atomically, so a run killed at any moment continues where it stopped.
public struct Runner {
    public var plan: ExperimentPlan
    public var store: RunStore
    public var worker: UnitWorker
    /// Units that may run at once. Each training unit already uses every core, so the default is 1.
    public var concurrency: Int
    public var display: ProgressDisplay

    public init(plan: ExperimentPlan, store: RunStore, worker: UnitWorker, concurrency: Int = 1, display: ProgressDisplay? = nil) {
        self.plan = plan; self.store = store; self.worker = worker; self.concurrency = max(1, concurrency)
        self.display = display ?? ProgressDisplay(unitsTotal: plan.units.count)
    }

    public struct Summary: Equatable { public var ran: [String]; public var skipped: [String] }

    public func finished() -> Set<String> {
        Set(plan.units.filter { store.completion(of: $0) != nil }.map(\.id))
    }

    @discardableResult
    public func run() throws -> Summary {
        var done = finished()
        let skipped = plan.units.map(\.id).filter(done.contains)
        if !skipped.isEmpty { display.message("\(skipped.count) of \(plan.units.count) units already finished; continuing") }
        var ran: [String] = []
        while true {
            let ready = plan.ready(done: done)
            if ready.isEmpty { break }
            let batch = Array(ready.prefix(concurrency))
            let results = runBatch(batch)
            for (unit, result) in zip(batch, results) {
                switch result {
                case .success: done.insert(unit.id); ran.append(unit.id)
                case .failure(let error):
                    store.log(["event": "failed", "unit": unit.id, "error": "\(error)"])
                    throw RunError(unit: unit.id, directory: store.directory(for: unit).path, underlying: "\(error)")
                }
            }
        }
        return Summary(ran: ran, skipped: skipped)
    }

    private func runBatch(_ units: [PlanUnit]) -> [Result<Void, Error>] {
        let results = ResultBox(count: units.count)
        Parallelism.forEach(units.count, threads: units.count) { i in
            results.set(i, Result { try runOne(units[i]) })
        }
        return results.values.map { $0! }
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

private final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var values: [Result<Void, Error>?]
    init(count: Int) { values = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ value: Result<Void, Error>) { lock.lock(); values[i] = value; lock.unlock() }
}

enum Parallelism {
    static func forEach(_ count: Int, threads: Int, _ body: (Int) -> Void) {
        if count <= 1 || threads <= 1 { for i in 0..<count { body(i) }; return }
        withoutActuallyEscaping(body) { body in DispatchQueue.concurrentPerform(iterations: count) { body($0) } }
    }
}
