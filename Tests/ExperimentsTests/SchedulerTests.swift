import Engine
import Foundation
import Testing
@testable import Experiments
import Models

/// A worker whose units block until the test lets them go, and that records what each saw.
private final class GateWorker: UnitWorker, @unchecked Sendable {
    let lock = NSCondition()
    var events: [String] = []
    var threadsSeen: [String: Int] = [:]
    var runningNow = 0, mostAtOnce = 0
    /// Unit → unit whose start it waits for (at most 5 s) before finishing.
    let waitFor: [String: String]
    let failOn: String?
    /// Unit → seconds it lingers after that (outside the lock).
    let linger: [String: TimeInterval]
    init(waitFor: [String: String] = [:], failOn: String? = nil, linger: [String: TimeInterval] = [:]) {
        self.waitFor = waitFor; self.failOn = failOn; self.linger = linger
    }

    func run(_ unit: PlanUnit, in directory: URL, store: RunStore, progress: @escaping @Sendable (UnitProgress) -> Void) throws -> [String: String] {
        lock.lock()
        events.append("start " + unit.id)
        threadsSeen[unit.id] = Parallel.threads
        runningNow += 1; mostAtOnce = max(mostAtOnce, runningNow)
        lock.broadcast()
        if let other = waitFor[unit.id] {
            let deadline = Date().addingTimeInterval(5)
            while !events.contains("start " + other) && lock.wait(until: deadline) {}
        }
        if let t = linger[unit.id] { lock.unlock(); Thread.sleep(forTimeInterval: t); lock.lock() }
        runningNow -= 1
        events.append("end " + unit.id)
        lock.broadcast()
        lock.unlock()
        if unit.id == failOn { throw StoreError(path: unit.id, message: "injected failure") }
        return [:]
    }
}

private let quiet = ProgressDisplay(unitsTotal: 0, live: false, output: { _ in })

private func unit(_ id: String, _ deps: [String] = []) -> PlanUnit {
    PlanUnit(id: id, kind: .stage, hash: String(repeating: "a", count: 63) + String(id.count % 10), dependencies: deps,
             seed: 1, prefix: [id], algorithm: nil, label: "unit \(id)")
}

@Suite(.serialized) struct SchedulerTests {
    func store() throws -> RunStore {
        try RunStore(root: FileManager.default.temporaryDirectory.appendingPathComponent("palimpsest-sched-\(UUID().uuidString)"))
    }

    /// `slow` can only finish once `late` (which needs `fast`) has started: batch waves would
    /// deadlock into the 5 s timeout; a work queue starts `late` as soon as `fast` is done.
    @Test func startsReadyUnitsAsSoonAsASlotIsFree() throws {
        let plan = ExperimentPlan(units: [unit("slow"), unit("fast"), unit("late", ["fast"]), unit("last", ["slow", "late"])], paths: [], retrainedPaths: [])
        let s = try store()
        defer { try? FileManager.default.removeItem(at: s.root) }
        let worker = GateWorker(waitFor: ["slow": "late"])
        let summary = try Runner(plan: plan, store: s, worker: worker, concurrency: 2, threadsPerUnit: 1, display: quiet).run()
        #expect(Set(summary.ran) == ["slow", "fast", "late", "last"])
        let e = worker.events
        #expect(e.firstIndex(of: "start late")! < e.firstIndex(of: "end slow")!)
        #expect(e.last == "end last" && e.firstIndex(of: "start last")! > e.firstIndex(of: "end slow")!)
        #expect(worker.mostAtOnce == 2)
        #expect(worker.threadsSeen.values.allSatisfy { $0 == 1 })
        #expect(Runner(plan: plan, store: s, worker: worker, display: quiet).finished().count == 4)
    }

    @Test func oneAtATimeRunsInPlanOrderWithTheGlobalThreads() throws {
        let plan = ExperimentPlan(units: [unit("a"), unit("b"), unit("c", ["a"])], paths: [], retrainedPaths: [])
        let s = try store()
        defer { try? FileManager.default.removeItem(at: s.root) }
        let worker = GateWorker()
        try Runner(plan: plan, store: s, worker: worker, display: quiet).run()
        #expect(worker.events == ["start a", "end a", "start b", "end b", "start c", "end c"])
        #expect(worker.threadsSeen.values.allSatisfy { $0 == Parallel.globalThreads })
        #expect(Parallel.threads == Parallel.globalThreads)
    }

    /// Cores are shared among the units that can run: two ready units get half each, a unit
    /// alone all of them; an explicit budget wins.
    @Test func threadBudgetsFollowTheUnitsThatCanRun() throws {
        let saved = Parallel.threads
        Parallel.threads = 4
        defer { Parallel.threads = saved }
        let plan = ExperimentPlan(units: [unit("x"), unit("y"), unit("z", ["x", "y"])], paths: [], retrainedPaths: [])
        let s = try store()
        defer { try? FileManager.default.removeItem(at: s.root) }
        let worker = GateWorker(waitFor: ["x": "y", "y": "x"])
        try Runner(plan: plan, store: s, worker: worker, concurrency: 3, display: quiet).run()
        #expect(worker.threadsSeen == ["x": 2, "y": 2, "z": 4])
        #expect(Parallel.threads == 4)
        let inside = Parallel.withThreads(3) { Parallel.threads }
        #expect(inside == 3 && Parallel.threads == 4)
    }

    /// After a failure no new unit starts, the running one finishes and is recorded, and the
    /// failure is what the run throws.
    @Test func firstFailureStopsSchedulingAndLetsRunningUnitsFinish() throws {
        let plan = ExperimentPlan(units: [unit("bad"), unit("busy"), unit("after", ["bad"]), unit("other")], paths: [], retrainedPaths: [])
        let s = try store()
        defer { try? FileManager.default.removeItem(at: s.root) }
        // `busy` finishes well after `bad` has started (and failed at once).
        let worker = GateWorker(waitFor: ["busy": "bad"], failOn: "bad", linger: ["busy": 1])
        #expect { try Runner(plan: plan, store: s, worker: worker, concurrency: 2, display: quiet).run() } throws: { error in
            (error as? RunError)?.unit == "bad"
        }
        #expect(!worker.events.contains("start other") && !worker.events.contains("start after"))
        let finished = Runner(plan: plan, store: s, worker: worker, display: quiet).finished()
        #expect(finished == ["busy"])
        #expect(s.failedMarker(of: plan.units[0])?.error?.contains("injected failure") == true)
    }
}

@Suite struct UnitMemoryTests {
    let pilot = ModelPreset.pilot.config

    @Test func estimateCountsParameterCopiesAndActivations() {
        let p = pilot.parameterCount * 4
        let stage = UnitMemory.peakBytes(pilot, kind: .stage, batch: 8, sequence: 64)
        let unlearn = UnlearnPeak(pilot)
        #expect(stage - UnitMemory.overheadBytes - UnitMemory.activationBytes(pilot, batch: 8, sequence: 64) == 4 * p)
        #expect(unlearn - stage == p)
        #expect(UnitMemory.peakBytes(pilot, kind: .data, batch: 8, sequence: 64) == UnitMemory.overheadBytes)
        // Activations grow linearly with the batch and faster than linearly with the sequence (attention).
        let a1 = UnitMemory.activationBytes(pilot, batch: 1, sequence: 64)
        #expect(UnitMemory.activationBytes(pilot, batch: 3, sequence: 64) == 3 * a1)
        #expect(UnitMemory.activationBytes(pilot, batch: 1, sequence: 128) > 2 * a1)
        // The pilot model at batch 48 × 256 tokens: between 100 MiB and 4 GiB.
        let demo = try! #require(UnitMemory.peakBytes(spec: ExperimentSpec.parse(yaml: BuiltinSpecs.demo)))
        #expect(demo > 100 << 20 && demo < 4 << 30)
        // The tokenizer's vocabulary replaces the preset's.
        #expect(UnitMemory.modelConfig(of: try! ExperimentSpec.parse(yaml: BuiltinSpecs.smoke))?.vocabSize == 320)
    }

    func UnlearnPeak(_ c: ModelConfig) -> Int { UnitMemory.peakBytes(c, kind: .unlearn, batch: 8, sequence: 64) }

    @Test func autoConcurrencyNeverExceedsCoresOrMemory() {
        let gib = 1 << 30
        #expect(UnitMemory.autoConcurrency(cores: 8, budgetBytes: 16 * gib, unitPeakBytes: gib) == 8)
        #expect(UnitMemory.autoConcurrency(cores: 8, budgetBytes: 3 * gib + 5, unitPeakBytes: gib) == 3)
        #expect(UnitMemory.autoConcurrency(cores: 8, budgetBytes: gib / 2, unitPeakBytes: gib) == 1)
        #expect(UnitMemory.autoConcurrency(cores: 2, budgetBytes: nil, unitPeakBytes: gib) == 2)
        #expect(UnitMemory.autoConcurrency(cores: 0, budgetBytes: 16 * gib, unitPeakBytes: nil) == 1)
        for cores in 1...16 {
            for budget in [1, 5, 17, 64] {
                let c = UnitMemory.autoConcurrency(cores: cores, budgetBytes: budget * gib / 4, unitPeakBytes: gib)
                #expect(c >= 1 && c <= cores && (c == 1 || c * gib <= budget * gib / 4))
            }
        }
    }
}

@Suite struct SeveralUnitsProgressTests {
    final class Lines: @unchecked Sendable { var text = "" }

    @Test func liveLineShowsEveryRunningUnitAndLogsNameTheUnit() {
        let a = unit("a"), b = unit("b")
        let live = Lines()
        let d = ProgressDisplay(unitsTotal: 2, live: true, width: 200, output: { live.text += $0 })
        d.started(a); d.started(b)
        d.progress(a, UnitProgress(phase: "train", step: 3, totalSteps: 10, loss: 1.5))
        d.progress(b, UnitProgress(phase: "unlearn", step: 7, totalSteps: 20))
        let last = live.text.components(separatedBy: "\r\u{1B}[2K").last!
        #expect(last.contains("unit a: train step 3/10") && last.contains("unit b: unlearn step 7/20"))
        #expect(live.text.contains("[1/2] unit a") && live.text.contains("[2/2] unit b"))
        d.finished(a, seconds: 3)
        #expect(live.text.contains("unit a: done in 3s"))
        let after = live.text.components(separatedBy: "\r\u{1B}[2K").last!
        #expect(after.contains("unit b") && !after.contains("unit a"))
        // A narrow terminal gets a cut line.
        let narrow = Lines()
        let n = ProgressDisplay(unitsTotal: 2, live: true, width: 40, output: { narrow.text += $0 })
        n.started(a); n.started(b)
        n.progress(b, UnitProgress(phase: "unlearn", step: 7, totalSteps: 20, loss: 0.25))
        #expect(narrow.text.components(separatedBy: "\r\u{1B}[2K").last!.count <= 39)

        let plain = Lines()
        let p = ProgressDisplay(unitsTotal: 2, live: false, plainInterval: 3600, output: { plain.text += $0 })
        p.started(a); p.started(b)
        p.progress(b, UnitProgress(phase: "unlearn", step: 1, totalSteps: 2))
        p.progress(a, UnitProgress(phase: "train", step: 1, totalSteps: 2))
        p.finished(b, seconds: 1); p.finished(a, seconds: 2)
        #expect(plain.text.contains("  unit b: unlearn step 1/2") && plain.text.contains("  unit a: train step 1/2"))
        #expect(plain.text.contains("unit b: done in 1s") && plain.text.contains("unit a: done in 2s"))
        #expect(!plain.text.contains("\u{1B}"))
    }
}
