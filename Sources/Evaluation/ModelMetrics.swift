import Engine
import Foundation
import Models

/// The paper's metrics computed from models (see docs/metrics.md): each runs `ModelScoring` and
/// reduces with the pure metric functions of this module.
public enum ModelMetrics {
    /// Every (prompt, refusal phrasing) pair, prompt-major: the pairs of the forget score.
    public static func refusalPairs(prompts: [[Int32]], refusals: [[Int32]]) -> [ScoredPair] {
        prompts.flatMap { p in refusals.map { ScoredPair(prompt: p, response: $0) } }
    }

    /// Log-likelihoods of `pairs` gathered for the summaries (`meanPerToken`, ...) and the scores of
    /// `UnlearningScores`.
    public static func summary(_ model: CausalLM, pairs: [ScoredPair], batchSize: Int = 32,
                               metric: String = "log-likelihood summary") throws -> LogLikelihoodSummary {
        try LogLikelihoodSummary(sequences: ModelScoring.logLikelihoods(model, pairs, batchSize: batchSize), metric: metric)
    }

    /// Mean per-token log-likelihood of the refusal target and paraphrases given each forget prompt
    /// (every pair weighs the same): the quantity whose decrease is the forget score.
    public static func refusalLogLikelihood(_ model: CausalLM, prompts: [[Int32]], refusals: [[Int32]], batchSize: Int = 32) throws -> Double {
        let metric = "refusal log-likelihood"
        try requireNonEmpty(prompts, metric, "the forget prompt set")
        try requireNonEmpty(refusals, metric, "the refusal phrasing set")
        return try summary(model, pairs: refusalPairs(prompts: prompts, refusals: refusals), batchSize: batchSize, metric: metric).meanPerToken
    }

    /// Mean per-token log-likelihood of the entity answers given their questions
    /// (fact utility = 1 − |Δ| of this).
    public static func answerLogLikelihood(_ model: CausalLM, pairs: [ScoredPair], batchSize: Int = 32) throws -> Double {
        try summary(model, pairs: pairs, batchSize: batchSize, metric: "answer log-likelihood").meanPerToken
    }

    /// Generated solutions, decoded: one greedy solution per prompt when `samples` is 0, otherwise
    /// `samples` solutions sampled at `temperature` from a stream seeded by `seed`.
    public static func mathSamples(_ model: CausalLM, prompts: [[Int32]], samples: Int, maxNewTokens: Int, seed: UInt64,
                                   eosTokenIds: Set<Int>, temperature: Float = 1, batchSize: Int = 32,
                                   decode: ([Int]) -> String) throws -> [[String]] {
        let metric = "math accuracy"
        try require(samples >= 0, metric, "samples must be >= 0 (0 = greedy), found \(samples)")
        try require(samples == 0 || temperature > 0, metric, "sampling \(samples) solutions needs temperature > 0, found \(temperature)")
        let k = max(samples, 1)
        let rows: [[Int32]]
        do {
            rows = try ModelScoring.sample(model, prompts: prompts, length: maxNewTokens, seed: seed, eosTokenIds: eosTokenIds,
                                           count: k, temperature: samples == 0 ? 0 : temperature, batchSize: batchSize)
        } catch let e as EvaluationError { throw EvaluationError(metric, e.problem) }
        return prompts.indices.map { q in (0..<k).map { s in decode(rows[q * k + s].map(Int.init)) } }
    }

    /// Greedy (`samples` == 0) or sampled answers (`temperature`, `seed`), the number after `####`
    /// compared exactly with each reference's; unparsable samples count as wrong.
    public static func mathAccuracy(_ model: CausalLM, prompts: [[Int32]], references: [String], samples: Int, maxNewTokens: Int,
                                    seed: UInt64, eosTokenIds: Set<Int>, temperature: Float = 1, batchSize: Int = 32,
                                    decode: ([Int]) -> String) throws -> MathAccuracy {
        let metric = "math accuracy"
        try requireNonEmpty(prompts, metric, "the question set")
        try requireSameCount(prompts, references, metric, "prompts", "references")
        for (q, r) in references.enumerated() where MathAnswer.parse(r) == nil {
            throw EvaluationError(metric, "reference \(q) has no number after '####': \(r.prefix(80))")
        }
        let texts = try mathSamples(model, prompts: prompts, samples: samples, maxNewTokens: maxNewTokens, seed: seed,
                                    eosTokenIds: eosTokenIds, temperature: temperature, batchSize: batchSize, decode: decode)
        return try MathAccuracy(samples: texts, references: references)
    }

    /// log π(C), log π(U), log π(R) (summed over response tokens) per prompt.
    public static func mass(_ model: CausalLM, items: [(prompt: [Int32], c: [Int32], u: [Int32], r: [Int32])],
                            batchSize: Int = 32) throws -> [MassPoint] {
        let metric = "probability mass"
        try requireNonEmpty(items, metric, "the item set")
        let pairs = items.flatMap { [ScoredPair(prompt: $0.prompt, response: $0.c), ScoredPair(prompt: $0.prompt, response: $0.u),
                                     ScoredPair(prompt: $0.prompt, response: $0.r)] }
        let ll: [SequenceLogLikelihood]
        do { ll = try ModelScoring.logLikelihoods(model, pairs, batchSize: batchSize) } catch let e as EvaluationError {
            throw EvaluationError(metric, e.problem)
        }
        return items.indices.map { MassPoint(logC: ll[3 * $0].sum, logU: ll[3 * $0 + 1].sum, logR: ll[3 * $0 + 2].sum) }
    }

    /// Keys of `distance`'s result.
    public enum DistanceKey {
        /// Mean over probe tokens of (log π_model − log π_retrained)² of the probe tokens.
        public static let meanSquaredLogProbDifference = "mean_squared_logprob_difference"
        /// Mean over probe positions of KL(π_model ‖ π_retrained), full next-token distributions.
        public static let klModelRetrained = "kl_model_retrained"
        /// Mean over probe positions of KL(π_retrained ‖ π_model).
        public static let klRetrainedModel = "kl_retrained_model"
        /// The sum of the two KLs (Jeffreys divergence per position).
        public static let klSymmetric = "kl_symmetric"
        /// Number of probe positions (tokens) compared.
        public static let positions = "positions"
    }

    /// Distance of `model` to `retrained` on a probe set (see `DistanceKey`): mean squared difference
    /// of the probe tokens' log-probabilities, and KL both directions between the full next-token
    /// distributions at every probe position. Both models are run on the same batches.
    public static func distance(_ model: CausalLM, to retrained: CausalLM, probe: [ScoredPair], batchSize: Int = 32) throws -> [String: Double] {
        let metric = "distance to the retrained model"
        try requireCompatible(model, retrained, metric, "the model", "the retrained model")
        try ModelScoring.validate(model, probe, batchSize: batchSize, metric: metric)
        let vocab = model.config.vocabSize
        var squared = 0.0, klPQ = 0.0, klQP = 0.0, positions = 0
        for batch in ModelScoring.batches(probe.map(\.length), batchSize: batchSize) {
            let p = ModelScoring.logDistributions(model, probe, batch)
            let q = ModelScoring.logDistributions(retrained, probe, batch)
            let targets = batch.flatMap { i in probe[i].response.suffix(probe[i].scoredCount) }
            let n = targets.count
            var rowPQ = [Double](repeating: 0, count: n), rowQP = rowPQ, rowSq = rowPQ
            p.withUnsafeBufferPointer { pp in
                q.withUnsafeBufferPointer { qq in
                    rowPQ.withUnsafeMutableBufferPointer { a in
                        rowQP.withUnsafeMutableBufferPointer { b in
                            rowSq.withUnsafeMutableBufferPointer { c in
                                let pb = pp.baseAddress!, qb = qq.baseAddress!
                                let ab = a.baseAddress!, bb = b.baseAddress!, cb = c.baseAddress!
                                Parallel.forEach(n) { r in
                                    let lp = pb + r * vocab, lq = qb + r * vocab
                                    var s1 = 0.0, s2 = 0.0
                                    for v in 0..<vocab {
                                        let d = Double(lp[v]) - Double(lq[v])
                                        s1 += Foundation.exp(Double(lp[v])) * d
                                        s2 -= Foundation.exp(Double(lq[v])) * d
                                    }
                                    ab[r] = s1
                                    bb[r] = s2
                                    let t = Int(targets[r])
                                    let d = Double(lp[t]) - Double(lq[t])
                                    cb[r] = d * d
                                }
                            }
                        }
                    }
                }
            }
            for r in 0..<n {
                klPQ += rowPQ[r]
                klQP += rowQP[r]
                squared += rowSq[r]
            }
            positions += n
        }
        let count = Double(positions)
        return [
            DistanceKey.meanSquaredLogProbDifference: squared / count,
            DistanceKey.klModelRetrained: klPQ / count,
            DistanceKey.klRetrainedModel: klQP / count,
            DistanceKey.klSymmetric: (klPQ + klQP) / count,
            DistanceKey.positions: count,
        ]
    }

    /// Jeffreys divergence J(p, q) = KL(p‖q) + KL(q‖p), each direction estimated with k3 on
    /// `samplesPerPrompt` continuations of `length` tokens sampled (temperature 1) from its own model
    /// and scored by both. Deterministic for a seed.
    public static func jeffreys(_ p: CausalLM, _ q: CausalLM, prompts: [[Int32]], length: Int, seed: UInt64, eosTokenIds: Set<Int>,
                                samplesPerPrompt: Int = 1, level: PathDivergence.Level = .token, batchSize: Int = 32) throws -> Double {
        try pairwiseJeffreys([p, q], prompts: prompts, length: length, seed: seed, eosTokenIds: eosTokenIds,
                             samplesPerPrompt: samplesPerPrompt, level: level, batchSize: batchSize)[0][1]
    }

    /// The symmetric matrix of Jeffreys divergences between `models` (zero diagonal). Each model
    /// samples once (its own stream derived from `seed` and its index) and every model scores every
    /// sample set, so n models cost n samplings and n² scorings.
    public static func pairwiseJeffreys(_ models: [CausalLM], prompts: [[Int32]], length: Int, seed: UInt64, eosTokenIds: Set<Int>,
                                        samplesPerPrompt: Int = 1, level: PathDivergence.Level = .token,
                                        batchSize: Int = 32) throws -> [[Double]] {
        let metric = "Jeffreys divergence"
        try require(models.count >= 2, metric, "needs at least 2 models, found \(models.count)")
        try requireNonEmpty(prompts, metric, "the prompt set")
        for j in 1..<models.count { try requireCompatible(models[0], models[j], metric, "model 0", "model \(j)") }
        let root = SeededRandom(seed: seed)
        var logProbs = [[[[Double]]]]()
        for (i, sampler) in models.enumerated() {
            var stream = root.derived("jeffreys model \(i)")
            let continuations: [[Int32]]
            do {
                continuations = try ModelScoring.sample(sampler, prompts: prompts, length: length, seed: stream.next(),
                                                        eosTokenIds: eosTokenIds, count: samplesPerPrompt, batchSize: batchSize)
            } catch let e as EvaluationError { throw EvaluationError(metric, "sampling model \(i): \(e.problem)") }
            let pairs = continuations.enumerated().map { r, c in ScoredPair(prompt: prompts[r / samplesPerPrompt], response: c) }
            var row = [[[Double]]]()
            for scorer in models {
                row.append(try ModelScoring.tokenLogProbs(scorer, pairs, batchSize: batchSize, metric: metric))
            }
            logProbs.append(row)
        }
        return try PathDivergence.pairwiseJeffreys(logProbs: logProbs, level: level)
    }

    /// Two models can only be compared token by token when they share the tokenizer: the same
    /// vocabulary size and special tokens.
    public static func requireCompatible(_ a: CausalLM, _ b: CausalLM, _ metric: String, _ nameA: String, _ nameB: String) throws {
        let x = a.config, y = b.config
        try require(x.vocabSize == y.vocabSize, metric,
                    "\(nameA) has a vocabulary of \(x.vocabSize) tokens but \(nameB) has \(y.vocabSize); the models must share a tokenizer")
        try require(x.bosTokenId == y.bosTokenId, metric,
                    "\(nameA) has BOS id \(x.bosTokenId.map(String.init) ?? "none") but \(nameB) has \(y.bosTokenId.map(String.init) ?? "none"); the models must share a tokenizer")
        try require(Set(x.eosTokenIds) == Set(y.eosTokenIds), metric,
                    "\(nameA) has EOS ids \(x.eosTokenIds.sorted()) but \(nameB) has \(y.eosTokenIds.sorted()); the models must share a tokenizer")
    }
}
