import Foundation
import Models
import Testing
import Tokenizers
@testable import Experiments

/// An experiment that starts from a Hugging Face checkpoint directory (`model: {checkpoint: DIR}`,
/// `tokenizer: checkpoint`) instead of a preset: the path a user with a real model takes.
@Suite(.serialized) struct CheckpointExperimentTests {
    static let quiet = ProgressDisplay(unitsTotal: 0, live: false, output: { _ in })

    /// A random Qwen2 model (q/k/v biases, tied embeddings, grouped-query attention) saved as a
    /// sharded BF16 checkpoint, with a byte-level BPE tokenizer beside it.
    func makeCheckpoint(in dir: URL) throws -> CausalLM {
        let corpus = (0..<60).map { i in
            "User: What does entity \(i % 7) study?\nAssistant: Entity \(i % 7) studies topic \(i % 5) and \(i % 3)."
        }
        let trained = try BPETrainer(vocabularySize: 300, specialTokens: ["<|endoftext|>"]).train(corpus)
        let tokenizerDir = dir.appendingPathComponent("tok")
        try trained.save(to: tokenizerDir)
        let tokenizer = try trained.tokenizer()
        let eos = try #require(tokenizer.tokenID(for: "<|endoftext|>"))
        let config = ModelConfig(architecture: .qwen2, vocabSize: tokenizer.vocabularySize, hiddenSize: 32,
                                 intermediateSize: 48, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2,
                                 tieWordEmbeddings: true, eosTokenIds: [eos], padTokenId: eos)
        let model = try CausalLM(config: config, seed: 7)
        let files = ["tokenizer.json", "tokenizer_config.json"].map { tokenizerDir.appendingPathComponent($0) }
        try model.save(to: dir.appendingPathComponent("hf"), dtype: .BF16, maxShardBytes: 20_000, companionFiles: files)
        return model
    }

    @Test func experimentFromAShardedQwen2Checkpoint() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("palimpsest-ckpt-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        _ = try makeCheckpoint(in: root)
        let hf = root.appendingPathComponent("hf")
        #expect(FileManager.default.fileExists(atPath: hf.appendingPathComponent("model.safetensors.index.json").path))

        let yaml = """
        name: from-checkpoint
        seeds: [3]
        model: {checkpoint: \(hf.path)}
        tokenizer: checkpoint
        datasets:
          instructions: {generator: instructions, size: 12}
          entities: {generator: entities, size: 8}
          safety: {generator: safety, size: 8, test_size: 4}
        stages:
          - {name: instructions, data: instructions, batch_size: 4, optimizer: {lr: 3e-3}}
          - {name: safety, data: safety, batch_size: 4, optimizer: {lr: 3e-3}}
        forget: safety
        unlearning:
          steps: 2
          batch_size: 4
          optimizer: {lr: 1e-3}
          algorithms: [ga]
        evaluation:
          forget_prompts: safety.test
          paraphrases: 2
          facts: entities
          divergence_samples: 2
          divergence_length: 6
        """
        let spec = try ExperimentSpec.parse(yaml: yaml)
        let run = try ExperimentRun(spec: spec, directory: root.appendingPathComponent("run"))
        try run.prepare()
        let summary = try Runner(plan: run.plan, store: run.store, worker: PipelineWorker(spec: spec, plan: run.plan),
                                 display: Self.quiet).run()
        #expect(summary.ran.count == run.plan.units.count)
        try run.writeReport()

        // The base unit trains nothing: its model is the checkpoint, as BF16 stored it.
        let base = try #require(run.plan.units.first { $0.kind == .base })
        let baseDir = run.store.directory(for: base).appendingPathComponent("model")
        let saved = try CausalLM(directory: baseDir)
        let original = try CausalLM(directory: hf)
        #expect(saved.config.architecture == .qwen2 && saved.config.tieWordEmbeddings)
        for (a, b) in zip(saved.parameterValues(), original.parameterValues()) {
            #expect(a == b, "\(a.name)")
        }
        // The checkpoint's tokenizer travels with every model of the run.
        #expect(FileManager.default.fileExists(atPath: baseDir.appendingPathComponent("tokenizer.json").path))

        // Both positions of the forget stage, unlearned with GA, evaluated at steps 0...2.
        let (metrics, comparisons) = try run.collect()
        let ga = metrics.filter { $0.algorithm == "ga" }
        #expect(Set(ga.map(\.position)) == [1, 2] && ga.count == 2 * 3)
        for p in [1, 2] {
            let last = try #require(ga.first { $0.position == p && $0.step == 2 })
            #expect(last.metrics["forget_score"].map { $0 > 0 } == true, "GA raises the forget score at p=\(p)")
        }
        #expect(metrics.contains { $0.algorithm == "retrained" })
        #expect(comparisons.count == 1 && comparisons[0].divergence.count == 2)
        let md = try String(contentsOf: run.store.root.appendingPathComponent("summary.md"), encoding: .utf8)
        #expect(md.contains("p=1") && md.contains("p=2"))
    }
}
