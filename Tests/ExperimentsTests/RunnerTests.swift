import Foundation
import Testing
@testable import Experiments
import Datasets

/// A worker that writes a file derived from its parents' files, so that outputs depend on order.
private struct ChainWorker: UnitWorker {
    let failOn: String?
    let counter: Counter
    final class Counter: @unchecked Sendable { let lock = NSLock(); var ids: [String] = []
        func add(_ s: String) { lock.lock(); ids.append(s); lock.unlock() } }
    func run(_ unit: PlanUnit, in directory: URL, store: RunStore, progress: @escaping @Sendable (UnitProgress) -> Void) throws -> [String: String] {
        if unit.id == failOn { throw StoreError(path: unit.id, message: "injected failure") }
        counter.add(unit.id)
        progress(UnitProgress(phase: "work", step: 1, totalSteps: 1))
        let parents = unit.dependencies.map { id -> String in
            let u = try! #require(store.completion(of: ExperimentPlanHolder.plan!.unit(id)!))
            return u.outputs["value"]!
        }
        let value = SHA256.hex(Data((unit.id + parents.joined()).utf8))
        try writeAtomically(Data(value.utf8), to: directory.appendingPathComponent("value.txt"))
        return ["value": value]
    }
}
private enum ExperimentPlanHolder { nonisolated(unsafe) static var plan: ExperimentPlan? }

private let quiet = ProgressDisplay(unitsTotal: 0, live: false, output: { _ in })

@Suite(.serialized) struct RunnerTests {
    func tempDir() -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("palimpsest-runner-\(UUID().uuidString)")
        return url
    }

    @Test func runsInOrderSkipsFinishedAndResumesAfterFailure() throws {
        let spec = try ExperimentSpec.parse(yaml: BuiltinSpecs.demo)
        let plan = ExperimentPlan(spec: spec)
        ExperimentPlanHolder.plan = plan
        let root = tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        let store = try RunStore(root: root)
        let failing = plan.units.first { $0.kind == .unlearn }!.id
        let first = ChainWorker(failOn: failing, counter: .init())
        #expect(throws: RunError.self) { try Runner(plan: plan, store: store, worker: first, display: quiet).run() }
        let finishedBefore = Runner(plan: plan, store: store, worker: first, display: quiet).finished()
        #expect(!finishedBefore.contains(failing) && finishedBefore.count == first.counter.ids.count)

        let second = ChainWorker(failOn: nil, counter: .init())
        let summary = try Runner(plan: plan, store: store, worker: second, concurrency: 2, display: quiet).run()
        #expect(Set(summary.skipped) == finishedBefore)
        #expect(Set(second.counter.ids).isDisjoint(with: finishedBefore))
        #expect(summary.ran.count + summary.skipped.count == plan.units.count)

        // An uninterrupted run in a fresh directory gives the same outputs.
        let root2 = tempDir()
        defer { try? FileManager.default.removeItem(at: root2) }
        let store2 = try RunStore(root: root2)
        try Runner(plan: plan, store: store2, worker: ChainWorker(failOn: nil, counter: .init()), display: quiet).run()
        for unit in plan.units { #expect(store.completion(of: unit)?.outputs == store2.completion(of: unit)?.outputs) }

        // A completion whose hash does not match (an edited spec) is not trusted.
        var edited = plan.units[0]; edited.hash = String(repeating: "0", count: 64)
        #expect(store.completion(of: edited) == nil)
        let log = try String(contentsOf: store.logURL, encoding: .utf8)
        #expect(log.contains("\"event\":\"failed\"") && log.contains("injected failure"))
    }

    @Test func atomicWriteReplacesWholeFilesAndReportsUnwritableDirectories() throws {
        let root = tempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        let file = root.appendingPathComponent("a/b/c.json")
        try writeAtomically(Data("one".utf8), to: file)
        try writeAtomically(Data("two".utf8), to: file)
        #expect(try String(contentsOf: file, encoding: .utf8) == "two")
        #expect(try FileManager.default.contentsOfDirectory(atPath: file.deletingLastPathComponent().path) == ["c.json"])
        // A path under a regular file cannot be a directory.
        #expect(throws: DataError.self) { try writeAtomically(Data(), to: file.appendingPathComponent("x")) }
    }
}

@Suite struct ProgressTests {
    final class Lines: @unchecked Sendable { var text = "" }
    @Test func plainLinesAndLiveBar() {
        let unit = PlanUnit(id: "u", kind: .stage, hash: "h", dependencies: [], seed: 1, prefix: ["a"], algorithm: nil, label: "train a")
        let plain = Lines()
        let d = ProgressDisplay(unitsTotal: 2, live: false, plainInterval: 3600, output: { plain.text += $0 })
        d.started(unit)
        for step in 1...10 { d.progress(unit, UnitProgress(phase: "train", step: step, totalSteps: 10, loss: 2.5)) }
        d.finished(unit, seconds: 75)
        // One line at the first step and one at the last; none in between.
        #expect(plain.text.components(separatedBy: "\n").filter { $0.contains("loss 2.5000") }.count == 2)
        #expect(plain.text.contains("[1/2] train a") && plain.text.contains("done in 1m15s"))
        #expect(!plain.text.contains("\u{1B}"))
        let live = Lines()
        let l = ProgressDisplay(unitsTotal: 1, live: true, output: { live.text += $0 })
        l.started(unit)
        l.progress(unit, UnitProgress(phase: "train", step: 5, totalSteps: 10))
        #expect(live.text.contains("[############............] train step 5/10  ETA"))
    }
}
