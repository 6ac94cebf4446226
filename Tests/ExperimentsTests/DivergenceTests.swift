import Datasets
import Foundation
import Testing
@testable import Experiments

/// Gradient ascent that diverges inside an experiment: the unit stops at the bad step, keeps
/// the last good model and the metrics measured before, says where it stopped, and the
/// experiment goes on.
@Suite(.serialized) struct DivergenceTests {
    static let spec = """
    name: diverge
    seeds: [1]
    model: {preset: pilot}
    tokenizer:
      train: {dataset: pretrain, vocab_size: 320}
    datasets:
      pretrain: {generator: pretrain, size: 120}
      safety: {generator: safety, size: 8, test_size: 2}
    pretraining:
      data: pretrain
      objective: lm
      batch_size: 64
    stages:
      - {name: safety, data: safety, batch_size: 8}
    forget: safety
    retrain: false
    unlearning:
      steps: 4
      batch_size: 8
      optimizer: {name: adamw, lr: 1e30}
      algorithms: [ga]
    evaluation:
      steps: [0, 4]
      forget_prompts: safety.test
      paraphrases: 1
    """

    @Test func divergingUnlearningKeepsTheLastGoodModelAndReportsTheStep() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("palimpsest-diverge-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let spec = try ExperimentSpec.parse(yaml: Self.spec)
        let run = try ExperimentRun(spec: spec, directory: root)
        try run.prepare()
        let quiet = ProgressDisplay(unitsTotal: 0, live: false, output: { _ in })
        try Runner(plan: run.plan, store: run.store, worker: PipelineWorker(spec: spec, plan: run.plan), display: quiet).run()
        let unit = try #require(run.plan.units.first { $0.kind == .unlearn })
        let done = try #require(run.store.completion(of: unit))
        // Adam moves every weight by ~1e30 at step 1; the forward pass of step 2 overflows.
        let note = try #require(done.outputs["diverged"])
        #expect(note.hasPrefix("step 2: Unlearner step 2/4: non-finite value"), "\(note)")
        #expect(note.contains("kept the model after step 1"))
        let (metrics, _) = try run.collect()
        #expect(metrics.map(\.step) == [0])
        let log = try String(contentsOf: run.store.logURL, encoding: .utf8)
        #expect(log.contains("\"event\":\"diverged\""))
        #expect(run.verify().filter { $0.severity == .error } == [])
        #expect(run.status().allSatisfy { $0.done == $0.total })
    }
}
