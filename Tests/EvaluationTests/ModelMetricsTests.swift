import Engine
import Foundation
import Models
import Testing
import Evaluation

/// A tiny random decoder: vocab 40, hidden 16, 2 layers. A wide initialisation makes the
/// next-token distributions far from uniform, so differences between models show.
private func tinyModel(seed: UInt64, vocab: Int = 40) throws -> CausalLM {
    let config = ModelConfig(vocabSize: vocab, hiddenSize: 16, intermediateSize: 32, numHiddenLayers: 2,
                             numAttentionHeads: 2, numKeyValueHeads: 1, eosTokenIds: [1], initializerRange: 0.4)
    return try CausalLM(config: config, seed: seed)
}

/// Pairs of mixed lengths, including an empty prompt.
private func somePairs() -> [ScoredPair] {
    var rng = SeededRandom(seed: 7)
    func ids(_ n: Int) -> [Int32] { (0..<n).map { _ in Int32(2 + rng.nextInt(38)) } }
    return [ScoredPair(prompt: ids(3), response: ids(4)), ScoredPair(prompt: [], response: ids(6)),
            ScoredPair(prompt: ids(9), response: ids(1)), ScoredPair(prompt: ids(1), response: ids(2)),
            ScoredPair(prompt: ids(5), response: ids(7)), ScoredPair(prompt: ids(2), response: ids(3)),
            ScoredPair(prompt: ids(3), response: ids(4))]
}

/// Log-softmax rows of one unbatched sequence, by hand from `model.logits`.
private func referenceRows(_ model: CausalLM, _ ids: [Int32]) -> [[Double]] {
    let v = model.config.vocabSize
    let logits = Autograd.withNoGrad { model.logits(ids, batch: 1, length: ids.count).toArray() }
    return (0..<ids.count).map { t in
        let row = logits[(t * v)..<((t + 1) * v)].map(Double.init)
        let m = row.max()!
        let lse = m + log(row.reduce(0) { $0 + exp($1 - m) })
        return row.map { $0 - lse }
    }
}

/// Per-token log-probabilities of the scored response tokens, one sequence at a time.
private func referenceTokenLogProbs(_ model: CausalLM, _ pair: ScoredPair) -> [Double] {
    let ids = pair.prompt + pair.response
    let rows = referenceRows(model, ids)
    let first = max(pair.prompt.count, 1)
    return (first..<ids.count).map { rows[$0 - 1][Int(ids[$0])] }
}

private func close(_ a: Double, _ b: Double, _ tol: Double = 1e-4) -> Bool { abs(a - b) <= tol * max(1, abs(a), abs(b)) }

@Suite struct ModelScoringTests {
    @Test func logLikelihoodsMatchUnbatchedReferenceForEveryBatchSize() throws {
        let model = try tinyModel(seed: 1)
        let pairs = somePairs()
        let expected = pairs.map { referenceTokenLogProbs(model, $0) }
        #expect(expected[1].count == 5)  // empty prompt: every token after the first
        for batchSize in [1, 2, 3, 32] {
            let lls = try ModelScoring.logLikelihoods(model, pairs, batchSize: batchSize)
            let lps = try ModelScoring.tokenLogProbs(model, pairs, batchSize: batchSize)
            #expect(lls.count == pairs.count)
            for i in pairs.indices {
                #expect(lls[i].tokenCount == expected[i].count)
                #expect(close(lls[i].sum, expected[i].reduce(0, +)), "batch \(batchSize) pair \(i): \(lls[i].sum) vs \(expected[i].reduce(0, +))")
                #expect(lps[i].count == expected[i].count)
                for (a, b) in zip(lps[i], expected[i]) { #expect(close(a, b)) }
            }
        }
    }

    @Test func responseDistributionsAreTheNormalisedNextTokenRows() throws {
        let model = try tinyModel(seed: 2)
        let pairs = somePairs()
        let dists = try ModelScoring.responseDistributions(model, pairs, batchSize: 3)
        let lps = try ModelScoring.tokenLogProbs(model, pairs, batchSize: 3)
        for (i, p) in pairs.enumerated() {
            let ids = p.prompt + p.response
            let rows = referenceRows(model, ids)
            let first = max(p.prompt.count, 1)
            #expect(dists[i].count == p.scoredCount)
            for (t, row) in dists[i].enumerated() {
                #expect(row.count == 40)
                #expect(abs(row.reduce(0.0) { $0 + exp(Double($1)) } - 1) < 1e-5)
                for (a, b) in zip(row, rows[first - 1 + t]) { #expect(close(Double(a), b)) }
                #expect(close(Double(row[Int(ids[first + t])]), lps[i][t]))
            }
        }
    }

    @Test func samplingIsSeededAndStopsAtEOS() throws {
        let model = try tinyModel(seed: 3)
        let prompts: [[Int32]] = [[2, 3, 4], [5], [6, 7]]
        let a = try ModelScoring.sample(model, prompts: prompts, length: 8, seed: 11, eosTokenIds: [], count: 2)
        let b = try ModelScoring.sample(model, prompts: prompts, length: 8, seed: 11, eosTokenIds: [], count: 2)
        let c = try ModelScoring.sample(model, prompts: prompts, length: 8, seed: 12, eosTokenIds: [], count: 2)
        #expect(a == b)
        #expect(a != c)
        #expect(a.count == 6 && a.allSatisfy { $0.count == 8 })
        let stopped = try ModelScoring.sample(model, prompts: prompts, length: 8, seed: 11, eosTokenIds: Set(0..<40))
        #expect(stopped.allSatisfy { $0.count == 1 })
        // Greedy sampling equals the model's own greedy generation.
        let greedy = try ModelScoring.sample(model, prompts: prompts, length: 5, seed: 0, eosTokenIds: [], temperature: 0)
        for (p, g) in zip(prompts, greedy) {
            let one = try model.generate(prompts: [p.map(Int.init)], options: GenerationOptions(maxNewTokens: 5, eosTokenIds: []))
            #expect(one[0].tokens.map { Int32($0) } == g)
        }
    }

    @Test func emptyAndInvalidInputsAreErrors() throws {
        let model = try tinyModel(seed: 1)
        #expect(throws: EvaluationError.self) { try ModelScoring.logLikelihoods(model, []) }
        #expect(throws: EvaluationError.self) { try ModelScoring.tokenLogProbs(model, [ScoredPair(prompt: [2], response: [])]) }
        #expect(throws: EvaluationError.self) { try ModelScoring.logLikelihoods(model, [ScoredPair(prompt: [], response: [3])]) }
        #expect(throws: EvaluationError.self) { try ModelScoring.logLikelihoods(model, [ScoredPair(prompt: [2], response: [40])]) }
        #expect(throws: EvaluationError.self) { try ModelScoring.logLikelihoods(model, somePairs(), batchSize: 0) }
        #expect(throws: EvaluationError.self) { try ModelScoring.sample(model, prompts: [], length: 4, seed: 0, eosTokenIds: []) }
        #expect(throws: EvaluationError.self) { try ModelScoring.sample(model, prompts: [[]], length: 4, seed: 0, eosTokenIds: []) }
        do {
            _ = try ModelScoring.logLikelihoods(model, [ScoredPair(prompt: [2], response: [3]), ScoredPair(prompt: [2], response: [99])])
            Issue.record("no error")
        } catch let e as EvaluationError {
            #expect(e.problem.contains("pair 1") && e.problem.contains("99") && e.problem.contains("0..<40"))
        }
    }
}

@Suite struct ModelMetricsTests {
    @Test func distanceToItselfIsZeroAndPositiveOtherwise() throws {
        let a = try tinyModel(seed: 1), b = try tinyModel(seed: 2)
        let probe = somePairs()
        let same = try ModelMetrics.distance(a, to: a.copy(), probe: probe, batchSize: 3)
        #expect(same[ModelMetrics.DistanceKey.meanSquaredLogProbDifference] == 0)
        #expect(same[ModelMetrics.DistanceKey.klModelRetrained] == 0)
        #expect(same[ModelMetrics.DistanceKey.klRetrainedModel] == 0)
        let d = try ModelMetrics.distance(a, to: b, probe: probe, batchSize: 3)
        let positions = probe.reduce(0) { $0 + $1.scoredCount }
        #expect(d[ModelMetrics.DistanceKey.positions] == Double(positions))
        #expect(d[ModelMetrics.DistanceKey.klModelRetrained]! > 0.01)
        #expect(d[ModelMetrics.DistanceKey.klRetrainedModel]! > 0.01)
        #expect(d[ModelMetrics.DistanceKey.meanSquaredLogProbDifference]! > 0.01)
        // Agrees with the pure metric functions on the scored outputs.
        let pa = try ModelScoring.responseDistributions(a, probe), pb = try ModelScoring.responseDistributions(b, probe)
        let flat = { (x: [[[Float]]]) in x.flatMap { $0.flatMap { $0.map(Double.init) } } }
        let (pq, qp) = try Distance.klBothDirections(p: flat(pa), q: flat(pb), vocabularySize: 40)
        #expect(close(d[ModelMetrics.DistanceKey.klModelRetrained]!, pq))
        #expect(close(d[ModelMetrics.DistanceKey.klRetrainedModel]!, qp))
        #expect(close(d[ModelMetrics.DistanceKey.klSymmetric]!, pq + qp))
        let msd = try Distance.meanSquaredLogProbDifference(ModelScoring.tokenLogProbs(a, probe), ModelScoring.tokenLogProbs(b, probe))
        #expect(close(d[ModelMetrics.DistanceKey.meanSquaredLogProbDifference]!, msd))
    }

    @Test func jeffreysIsZeroForAModelWithItselfPositiveOtherwiseAndSeeded() throws {
        let a = try tinyModel(seed: 1), b = try tinyModel(seed: 2)
        let prompts: [[Int32]] = [[2, 3], [4], [5, 6, 7], [8, 9]]
        #expect(try ModelMetrics.jeffreys(a, a, prompts: prompts, length: 6, seed: 1, eosTokenIds: []) == 0)
        let j1 = try ModelMetrics.jeffreys(a, b, prompts: prompts, length: 6, seed: 1, eosTokenIds: [], samplesPerPrompt: 2)
        let j2 = try ModelMetrics.jeffreys(a, b, prompts: prompts, length: 6, seed: 1, eosTokenIds: [], samplesPerPrompt: 2)
        let j3 = try ModelMetrics.jeffreys(a, b, prompts: prompts, length: 6, seed: 2, eosTokenIds: [], samplesPerPrompt: 2)
        #expect(j1 > 0.01)
        #expect(j1 == j2)
        #expect(j1 != j3)
        let m = try ModelMetrics.pairwiseJeffreys([a, b, a.copy()], prompts: prompts, length: 6, seed: 1, eosTokenIds: [1])
        #expect(m[0][0] == 0 && m[0][2] == 0 && m[0][1] == m[1][0] && m[1][2] > 0.01)
    }

    @Test func massSharesSumToOneAndMatchLogLikelihoods() throws {
        let model = try tinyModel(seed: 4)
        let items: [(prompt: [Int32], c: [Int32], u: [Int32], r: [Int32])] = [
            ([2, 3, 4], [5, 6], [7, 8, 9], [10]), ([11], [12, 13, 14], [15], [16, 17]),
        ]
        let points = try ModelMetrics.mass(model, items: items)
        #expect(points.count == 2)
        for (p, item) in zip(points, items) {
            let s = p.shares
            #expect(abs(s.c + s.u + s.r - 1) < 1e-12)
            #expect(close(p.logU, referenceTokenLogProbs(model, ScoredPair(prompt: item.prompt, response: item.u)).reduce(0, +)))
            #expect(close(p.logR, referenceTokenLogProbs(model, ScoredPair(prompt: item.prompt, response: item.r)).reduce(0, +)))
        }
        #expect(throws: EvaluationError.self) { try ModelMetrics.mass(model, items: []) }
    }

    @Test func refusalAndAnswerLogLikelihoodsAreMeansPerToken() throws {
        let model = try tinyModel(seed: 5)
        let prompts: [[Int32]] = [[2, 3], [4, 5, 6]], refusals: [[Int32]] = [[7, 8, 9], [10]]
        let got = try ModelMetrics.refusalLogLikelihood(model, prompts: prompts, refusals: refusals, batchSize: 3)
        var means: [Double] = []
        for p in prompts {
            for r in refusals {
                let lp = referenceTokenLogProbs(model, ScoredPair(prompt: p, response: r))
                means.append(lp.reduce(0, +) / Double(lp.count))
            }
        }
        #expect(close(got, means.reduce(0, +) / 4))
        let pairs = ModelMetrics.refusalPairs(prompts: prompts, refusals: refusals)
        #expect(close(try ModelMetrics.answerLogLikelihood(model, pairs: pairs), got))
        #expect(throws: EvaluationError.self) { try ModelMetrics.refusalLogLikelihood(model, prompts: [], refusals: refusals) }
        #expect(throws: EvaluationError.self) { try ModelMetrics.refusalLogLikelihood(model, prompts: prompts, refusals: []) }
        #expect(throws: EvaluationError.self) { try ModelMetrics.answerLogLikelihood(model, pairs: []) }
    }

    @Test func mathAccuracyAgainstTheModelsOwnAnswers() throws {
        let model = try tinyModel(seed: 6)
        let prompts: [[Int32]] = [[2, 3], [4], [5, 6, 7]]
        // A "tokenizer" whose texts are GSM8K answers built from the generated ids.
        let decode: ([Int]) -> String = { ids in "reasoning #### " + ids.map { String($0 % 10) }.joined() }
        let greedy = try ModelScoring.sample(model, prompts: prompts, length: 4, seed: 0, eosTokenIds: [], temperature: 0)
        let right = greedy.map { decode($0.map(Int.init)) }
        let acc = try ModelMetrics.mathAccuracy(model, prompts: prompts, references: right, samples: 0, maxNewTokens: 4, seed: 9,
                                                eosTokenIds: [], decode: decode)
        #expect(acc.mean == 1 && acc.totalSamples == 3 && acc.unparsable == 0)
        let wrong = right.map { $0 + "1" }  // one more digit: a different number
        let zero = try ModelMetrics.mathAccuracy(model, prompts: prompts, references: wrong, samples: 0, maxNewTokens: 4, seed: 9,
                                                 eosTokenIds: [], decode: decode)
        #expect(zero.mean == 0 && zero.unparsable == 0)
        let mixed = try ModelMetrics.mathAccuracy(model, prompts: prompts, references: [right[0], wrong[1], right[2]], samples: 0,
                                                  maxNewTokens: 4, seed: 9, eosTokenIds: [], decode: decode)
        #expect(mixed.perQuestion == [1, 0, 1])
        let unparsable = try ModelMetrics.mathAccuracy(model, prompts: prompts, references: right, samples: 2, maxNewTokens: 4, seed: 9,
                                                       eosTokenIds: [], decode: { _ in "no answer" })
        #expect(unparsable.mean == 0 && unparsable.unparsable == 6 && unparsable.totalSamples == 6)
        // Sampled answers are seeded: references from one seeded run score 1 when rerun with that seed.
        let texts = try ModelMetrics.mathSamples(model, prompts: prompts, samples: 3, maxNewTokens: 4, seed: 5, eosTokenIds: [],
                                                 decode: decode)
        let again = try ModelMetrics.mathAccuracy(model, prompts: prompts, references: texts.map { $0[1] }, samples: 3,
                                                  maxNewTokens: 4, seed: 5, eosTokenIds: [], decode: decode)
        #expect(again.perQuestion.allSatisfy { $0 >= 1.0 / 3 })
        #expect(throws: EvaluationError.self) {
            try ModelMetrics.mathAccuracy(model, prompts: [], references: [], samples: 0, maxNewTokens: 4, seed: 0, eosTokenIds: [], decode: decode)
        }
        #expect(throws: EvaluationError.self) {
            try ModelMetrics.mathAccuracy(model, prompts: prompts, references: ["#### 1"], samples: 0, maxNewTokens: 4, seed: 0,
                                          eosTokenIds: [], decode: decode)
        }
        #expect(throws: EvaluationError.self) {
            try ModelMetrics.mathAccuracy(model, prompts: prompts, references: ["1", "2", "3"], samples: 0, maxNewTokens: 4, seed: 0,
                                          eosTokenIds: [], decode: decode)
        }
    }

    @Test func mismatchedVocabulariesAndEmptySetsAreErrors() throws {
        let a = try tinyModel(seed: 1), b = try tinyModel(seed: 2, vocab: 41)
        let probe = somePairs()
        do {
            _ = try ModelMetrics.distance(a, to: b, probe: probe)
            Issue.record("no error")
        } catch let e as EvaluationError {
            #expect(e.problem.contains("40") && e.problem.contains("41") && e.problem.contains("tokenizer"))
        }
        #expect(throws: EvaluationError.self) { try ModelMetrics.jeffreys(a, b, prompts: [[2]], length: 3, seed: 0, eosTokenIds: []) }
        #expect(throws: EvaluationError.self) { try ModelMetrics.distance(a, to: a, probe: []) }
        #expect(throws: EvaluationError.self) { try ModelMetrics.jeffreys(a, a, prompts: [], length: 3, seed: 0, eosTokenIds: []) }
        #expect(throws: EvaluationError.self) { try ModelMetrics.pairwiseJeffreys([a], prompts: [[2]], length: 3, seed: 0, eosTokenIds: []) }
    }
}
