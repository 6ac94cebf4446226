import Foundation
import Testing
@testable import Experiments

/// A worker that writes a file derived from its parents' files, so that outputs depend on order.
private struct ChainWorker: UnitWorker {
    let failOn: String?
    let counter: Counter
    final class Counter: @unchecked Sendable { let lock = NSLock(); var ids: [String] = []
        func add(_ s: String) { lock.lock(); ids.append(s); lock.unlock() } }
    func run(_ unit: PlanUnit, in directory: URL, store: RunStore, progress: @escaping @Sendable (String) -> Void) throws -> [String: String] {
        if unit.id == failOn { throw StoreError(path: unit.id, message: "injected failure") }
        counter.add(unit.id)
        progress("working")
        let parents = unit.dependencies.map { id -> String in
            let u = try! #require(store.completion(of: ExperimentPlanHolder.plan!.unit(id)!))
            return u.outputs["value"]!
        }
        let value = SHA256Digest.hex(unit.id + parents.joined())
        try writeAtomically(Data(value.utf8), to: directory.appendingPathComponent("value.txt"))
        return ["value": value]
    }
}
private enum ExperimentPlanHolder { nonisolated(unsafe) static var plan: ExperimentPlan? }

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
        #expect(throws: RunError.self) { try Runner(plan: plan, store: store, worker: first, report: { _ in }).run() }
        let finishedBefore = Runner(plan: plan, store: store, worker: first, report: { _ in }).finished()
        #expect(!finishedBefore.contains(failing) && finishedBefore.count == first.counter.ids.count)

        let second = ChainWorker(failOn: nil, counter: .init())
        let summary = try Runner(plan: plan, store: store, worker: second, concurrency: 2, report: { _ in }).run()
        #expect(Set(summary.skipped) == finishedBefore)
        #expect(Set(second.counter.ids).isDisjoint(with: finishedBefore))
        #expect(summary.ran.count + summary.skipped.count == plan.units.count)

        // An uninterrupted run in a fresh directory gives the same outputs.
        let root2 = tempDir()
        defer { try? FileManager.default.removeItem(at: root2) }
        let store2 = try RunStore(root: root2)
        try Runner(plan: plan, store: store2, worker: ChainWorker(failOn: nil, counter: .init()), report: { _ in }).run()
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
        #expect(throws: StoreError.self) { try writeAtomically(Data(), to: file.appendingPathComponent("x")) }
    }
}
