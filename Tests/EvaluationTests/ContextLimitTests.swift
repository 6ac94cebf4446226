import Foundation
import Models
import Testing
import Evaluation

/// Scoring refuses sequences longer than the model's context (docs/hostile-inputs.md).
@Suite struct ContextLimitTests {
    @Test func pairsLongerThanTheContextAreRefused() throws {
        let config = ModelConfig(vocabSize: 16, hiddenSize: 8, intermediateSize: 8, numHiddenLayers: 1,
                                 numAttentionHeads: 2, maxPositionEmbeddings: 6)
        let model = try CausalLM(config: config, seed: 2)
        let fits = ScoredPair(prompt: [1, 2, 3], response: [4, 5, 6])
        #expect(try ModelScoring.logLikelihoods(model, [fits]).count == 1)
        let long = ScoredPair(prompt: [1, 2, 3], response: [4, 5, 6, 7])
        do {
            _ = try ModelScoring.logLikelihoods(model, [fits, long])
            Issue.record("expected an EvaluationError")
        } catch let e as EvaluationError {
            #expect(e.problem.contains("pair 1 has 7 tokens (prompt 3 + response 4)") && e.problem.contains("max_position_embeddings 6"), "\(e)")
        }
        #expect(throws: EvaluationError.self) { _ = try ModelScoring.tokenLogProbs(model, [long]) }
        #expect(throws: EvaluationError.self) { _ = try ModelScoring.sample(model, prompts: [[1, 2, 3]], length: 4, seed: 0, eosTokenIds: []) }
    }

    /// Every prompt is repeated `count` times up front: a sample count of 10^15 (`eval math
    /// --samples`, a spec's `math_samples`) allocated the list of rows without limit.
    @Test func sampleCountsBeyondTheLimitAreRefusedBeforeAllocating() throws {
        let config = ModelConfig(vocabSize: 16, hiddenSize: 8, intermediateSize: 8, numHiddenLayers: 1, numAttentionHeads: 2)
        let model = try CausalLM(config: config, seed: 2)
        for count in [1_000_000_000_000_000, Int.max] {
            do {
                _ = try ModelScoring.sample(model, prompts: [[1, 2], [3]], length: 2, seed: 0, eosTokenIds: [], count: count)
                Issue.record("expected an EvaluationError")
            } catch let e as EvaluationError {
                #expect(e.metric == "sampling" && e.problem.contains("2 prompts × \(count) samples each is more than 1000000 samples"), "\(e)")
            }
        }
        #expect(try ModelScoring.sample(model, prompts: [[1, 2], [3]], length: 2, seed: 0, eosTokenIds: [], count: 3).count == 6)
    }
}
