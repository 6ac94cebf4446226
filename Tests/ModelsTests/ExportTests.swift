import Engine
import Foundation
import Testing
@testable import Models

/// Checkpoints Palimpsest writes for transformers to load.
///
/// The test saves two freshly initialised models (a tied Llama-3 style one with rope scaling
/// and biases, and a Qwen2 one) with their logits on fixed ids, and checks they reload in Swift
/// unchanged. With `PALIMPSEST_EXPORT_DIR` set, it writes them there so
/// `scripts/reference/model_fixtures.py verify DIR/*` can load them with transformers.
@Suite struct ExportTests {
    static let configs: [(String, ModelConfig)] = [
        ("llama3_export", ModelConfig(architecture: .llama, vocabSize: 90, hiddenSize: 32, intermediateSize: 40,
                                      numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2, headDim: 10,
                                      rmsNormEps: 1e-5, ropeTheta: 500000,
                                      ropeScaling: .llama3(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 16),
                                      tieWordEmbeddings: true, attentionBias: true, mlpBias: true, bosTokenId: 1, eosTokenIds: [2],
                                      initializerRange: 0.2)),
        ("qwen2_export", ModelConfig(architecture: .qwen2, vocabSize: 70, hiddenSize: 24, intermediateSize: 36,
                                     numHiddenLayers: 2, numAttentionHeads: 6, numKeyValueHeads: 2, rmsNormEps: 1e-6,
                                     ropeTheta: 1_000_000, maxPositionEmbeddings: 256, eosTokenIds: [3, 4], initializerRange: 0.2)),
    ]

    @Test func savedCheckpointsReloadWithTheSameLogits() throws {
        let root: URL
        let keep = ProcessInfo.processInfo.environment["PALIMPSEST_EXPORT_DIR"]
        if let keep { root = URL(fileURLWithPath: keep) } else { root = try makeTempDirectory("export") }
        defer { if keep == nil { cleanup(root) } }
        for (name, config) in Self.configs {
            let model = try CausalLM(config: config, seed: 11)
            // Biases start at zero; give them values so the export exercises them.
            for (pname, p) in model.namedParameters where pname.hasSuffix(".bias") {
                p.withUnsafeMutableBufferPointer { b in for i in b.indices { b[i] = Float(i % 5) * 0.05 - 0.1 } }
            }
            let dir = root.appendingPathComponent(name)
            try model.save(to: dir)
            let ids: [Int32] = (0..<24).map { Int32(($0 * 13 + 7) % config.vocabSize) }
            let logits = Autograd.withNoGrad { model.logits(ids, batch: 2, length: 12).toArray() }
            let record: [String: Any] = ["input_ids": [Array(ids[0..<12]), Array(ids[12..<24])].map { $0.map(Int.init) },
                                         "logits": logits.map(Double.init)]
            try JSONSerialization.data(withJSONObject: record).write(to: dir.appendingPathComponent("palimpsest_logits.json"))

            let back = try CausalLM(directory: dir)
            #expect(back.config == config)
            let again = Autograd.withNoGrad { back.logits(ids, batch: 2, length: 12).toArray() }
            #expect(again == logits)
            let text = try String(contentsOf: dir.appendingPathComponent("config.json"), encoding: .utf8)
            #expect(text.contains(config.architecture.hfClassName))

            // The same model stored as BF16, sharded: logits of the rounded weights.
            let bfDir = root.appendingPathComponent(name + "_bf16")
            try model.save(to: bfDir, dtype: .BF16, maxShardBytes: 8_000)
            let rounded = try CausalLM(directory: bfDir)
            #expect(try Checkpoint(directory: bfDir).files.count > 1)
            let bfLogits = Autograd.withNoGrad { rounded.logits(ids, batch: 2, length: 12).toArray() }
            #expect(bfLogits != logits && zip(bfLogits, logits).allSatisfy { abs($0 - $1) < 0.1 })
            let bfRecord: [String: Any] = ["input_ids": record["input_ids"]!, "logits": bfLogits.map(Double.init)]
            try JSONSerialization.data(withJSONObject: bfRecord).write(to: bfDir.appendingPathComponent("palimpsest_logits.json"))
        }
        // A model loaded from a checkpoint saves its tokenizer / generation files along.
        let loaded = try CausalLM(directory: Fixtures.url("llama_linear"))
        let dir = root.appendingPathComponent("llama_linear_resaved")
        try loaded.copy().save(to: dir)
        let ids: [Int32] = (0..<16).map { Int32(($0 * 7 + 3) % 96) }
        let logits = Autograd.withNoGrad { loaded.logits(ids, batch: 1, length: 16).toArray() }
        try JSONSerialization.data(withJSONObject: ["input_ids": [ids.map(Int.init)], "logits": logits.map(Double.init)] as [String: Any])
            .write(to: dir.appendingPathComponent("palimpsest_logits.json"))
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("generation_config.json").path))
        #expect(try CausalLM(directory: dir).parameterValues() == loaded.parameterValues())
    }
}
