import Foundation
import Models
import Testing
@testable import Experiments

/// `lora:` blocks in experiment specs: parsing, key-path errors, and the pipeline applying them.
@Suite(.serialized) struct LoRAPipelineTests {
    static let quiet = ProgressDisplay(unitsTotal: 0, live: false, output: { _ in })

    /// A two-stage experiment (the safety stage at p = 1, 2) with a LoRA stage and NPO unlearned
    /// through its own LoRA; GA uses the unlearning block's.
    static let yaml = """
    name: lora
    seeds: [1]
    model: {preset: pilot}
    tokenizer:
      train: {dataset: pretrain, vocab_size: 300}
    datasets:
      pretrain: {generator: pretrain, size: 120}
      entities: {generator: entities, size: 8}
      safety: {generator: safety, size: 8, test_size: 4}
    pretraining: {data: pretrain, objective: lm, batch_size: 32, optimizer: {lr: 2e-3}}
    stages:
      - {name: entities, data: entities, batch_size: 8}
      - {name: safety, data: safety, batch_size: 8, lora: {rank: 2, alpha: 8, targets: [q, v, down]}, optimizer: {lr: 1e-2}}
    forget: safety
    retrain: false
    unlearning:
      steps: 2
      batch_size: 4
      lora: {rank: 4, dropout: 0.1}
      algorithms: [ga, {name: npo, beta: 0.5, lora: {rank: 2, targets: [q, o, up]}}]
    evaluation:
      forget_prompts: safety.test
      paraphrases: 1
      divergence_samples: 0
    """

    static let badAlgorithm = yaml.replacingOccurrences(of: "{name: npo, beta: 0.5, lora: {rank: 2, targets: [q, o, up]}}",
                                                        with: "{name: npo, lora: {rank: 0, alpha: -1, dropout: 1, targets: [q, attn], rnk: 2}}")

    @Test func loraBlocksParsePerStageAndPerAlgorithm() throws {
        let spec = try ExperimentSpec.parse(yaml: Self.yaml)
        let safety = try #require(spec.stages.first { $0.name == "safety" })
        #expect(safety.lora == LoRASpec(rank: 2, alpha: 8, dropout: 0, targets: ["q", "v", "down"]))
        #expect(spec.stages.filter { $0.lora != nil }.count == 1)
        #expect(spec.unlearning.algorithms.count == 2)
        #expect(spec.unlearning.lora == LoRASpec(rank: 4, alpha: 8, dropout: 0.1, targets: LoRASpec.allTargets))
        let npo = try #require(spec.unlearning.algorithms.first { $0.name == "npo" })
        #expect(npo.lora == LoRASpec(rank: 2, alpha: 4, dropout: 0, targets: ["q", "o", "up"]))
        #expect(npo.label == "npo(lora=r2)")
        #expect(spec.unlearning.algorithms.first { $0.name == "ga" }?.lora == nil)

        let bad = Self.badAlgorithm
        do {
            _ = try ExperimentSpec.parse(yaml: bad, file: "bad.yaml")
            Issue.record("an invalid lora block was accepted")
        } catch let error as SpecError {
            for expected in ["unlearning.algorithms[1].lora.rank", "unlearning.algorithms[1].lora.alpha: must be > 0",
                             "unlearning.algorithms[1].lora.dropout: must be in [0, 1)",
                             "unlearning.algorithms[1].lora.targets[1]: 'attn' names no module",
                             "unlearning.algorithms[1].lora.rnk: unknown key"] {
                #expect(error.description.contains(expected), "missing: \(expected)\n\(error)")
            }
        }
    }

    @Test func pipelineTrainsAndUnlearnsThroughLoRAAndSavesMergedModels() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("palimpsest-lora-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let spec = try ExperimentSpec.parse(yaml: Self.yaml)
        let run = try ExperimentRun(spec: spec, directory: root)
        try run.prepare()
        let summary = try Runner(plan: run.plan, store: run.store, worker: PipelineWorker(spec: spec, plan: run.plan), display: Self.quiet).run()
        #expect(summary.ran.count == run.plan.units.count)
        func model(_ unit: PlanUnit) throws -> CausalLM {
            try CausalLM(directory: run.store.directory(for: unit).appendingPathComponent("model"))
        }
        func values(_ m: CausalLM) -> [String: [Float]] {
            Dictionary(uniqueKeysWithValues: m.parameterValues().map { ($0.name, $0.values) })
        }
        // The safety stage (LoRA on q, v, down) changes exactly those weights: merged, plain checkpoint.
        let safetyStage = try #require(run.plan.units.first { $0.kind == .stage && $0.prefix.last == "safety" })
        let parent = try #require(run.plan.unit(safetyStage.dependencies[0]))
        let (before, after) = (values(try model(parent)), values(try model(safetyStage)))
        let stageDir = run.store.directory(for: safetyStage).appendingPathComponent("model")
        #expect(!FileManager.default.fileExists(atPath: stageDir.appendingPathComponent("adapter_config.json").path))
        for (name, v) in before {
            let adapted = ["q_proj.weight", "v_proj.weight", "down_proj.weight"].contains { name.hasSuffix($0) }
            #expect((after[name]! != v) == adapted, "\(name): changed \(after[name]! != v), adapted \(adapted)")
        }
        // NPO through its own LoRA (q, o, up); GA through the unlearning block's (all modules).
        for unit in run.plan.units where unit.kind == .unlearn {
            let (start, end) = (values(try model(try #require(run.plan.unit(unit.dependencies[0])))), values(try model(unit)))
            let targets = unit.algorithm == "ga" ? ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] : ["q_proj", "o_proj", "up_proj"]
            for (name, v) in start {
                let adapted = targets.contains { name.hasSuffix($0 + ".weight") }
                #expect((end[name]! != v) == adapted, "\(unit.id) \(name)")
            }
        }
        let (metrics, _) = try run.collect()
        #expect(metrics.filter { $0.algorithm == "npo(lora=r2)" }.count == 2 * 3)
        let finite = metrics.allSatisfy { $0.metrics.values.allSatisfy { $0.isFinite } }
        #expect(finite)
    }

    /// A stage whose examples do not fit its `max_length` fails its unit with the stage, the
    /// dataset and the example named, not only the trainer's "stage examples".
    @Test func aStageTooLongForItsMaxLengthNamesStageAndDataset() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("palimpsest-long-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let yaml = Self.yaml.replacingOccurrences(of: "{name: entities, data: entities, batch_size: 8}",
                                                  with: "{name: entities, data: entities, batch_size: 8, max_length: 3}")
        let spec = try ExperimentSpec.parse(yaml: yaml)
        let run = try ExperimentRun(spec: spec, directory: root)
        try run.prepare()
        do {
            try Runner(plan: run.plan, store: run.store, worker: PipelineWorker(spec: spec, plan: run.plan), display: Self.quiet).run()
            Issue.record("a stage longer than its max_length ran")
        } catch let error as RunError {
            #expect(error.description.contains("stages.entities (dataset 'entities'): stage examples: sequence too long: example 0 has"),
                    "\(error)")
            #expect(error.description.contains("maxContext is 3 (truncation: error)"), "\(error)")
        }
    }
}
