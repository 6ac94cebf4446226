import Engine
import Foundation
import Models

/// TOFU's metrics and membership inference computed from models (docs/metrics.md): the model
/// scores every answer with `ModelScoring` and answers greedily with the KV cache, and the pure
/// functions of `TOFU` and `MembershipInference` reduce the numbers.
extension ModelMetrics {
    /// One TOFU question as token ids.
    public struct TOFUItem: Sendable, Equatable {
        /// The question as the model sees it before it answers (chat template with the assistant
        /// header): the prompt of every scored answer and of the greedy answer.
        public var prompt: [Int32]
        /// The ground-truth answer (probability, and the plain truth-ratio numerator for real authors/world facts).
        public var answer: [Int32]
        /// A paraphrase of the correct answer (truth-ratio denominator); nil: the answer itself, as TOFU
        /// does for real authors and world facts.
        public var paraphrased: [Int32]?
        /// Wrong answers in the answer's template (at least one).
        public var perturbed: [[Int32]]
        /// The ground-truth answer's text: the ROUGE-L reference of the greedy answer.
        public var reference: String

        public init(prompt: [Int32], answer: [Int32], paraphrased: [Int32]? = nil, perturbed: [[Int32]], reference: String) {
            self.prompt = prompt; self.answer = answer; self.paraphrased = paraphrased; self.perturbed = perturbed; self.reference = reference
        }
    }

    /// Mean per-token log-likelihoods of every TOFU answer, question by question.
    public struct TOFUScores: Sendable, Equatable {
        public var answer: [Double]
        public var paraphrased: [Double]
        public var perturbed: [[Double]]

        /// Per-question truth ratios R = exp(mean_k LL(perturbed_k) − LL(paraphrased)).
        public func truthRatios() throws -> [Double] { try TOFU.truthRatios(paraphrased: paraphrased, perturbed: perturbed) }
    }

    /// Scores the answer, the paraphrase and every perturbed answer of each item in one batched pass.
    public static func tofuScores(_ model: CausalLM, items: [TOFUItem], batchSize: Int = 32) throws -> TOFUScores {
        let metric = "TOFU"
        try requireNonEmpty(items, metric, "the question set")
        var pairs: [ScoredPair] = []
        // Per item: the index of its answer, paraphrase and perturbed answers in `pairs`.
        var layout: [(answer: Int, paraphrased: Int, perturbed: Range<Int>)] = []
        for (i, item) in items.enumerated() {
            try require(!item.perturbed.isEmpty, metric, "question \(i) has no perturbed answers; the truth ratio needs at least one")
            let a = pairs.count
            pairs.append(ScoredPair(prompt: item.prompt, response: item.answer))
            var p = a
            if let para = item.paraphrased { p = pairs.count; pairs.append(ScoredPair(prompt: item.prompt, response: para)) }
            let start = pairs.count
            pairs += item.perturbed.map { ScoredPair(prompt: item.prompt, response: $0) }
            layout.append((a, p, start..<pairs.count))
        }
        let lp: [[Double]]
        do { lp = try ModelScoring.tokenLogProbs(model, pairs, batchSize: batchSize, metric: metric) } catch let e as EvaluationError {
            throw EvaluationError(metric, e.problem)
        }
        let mean = { (i: Int) in lp[i].reduce(0, +) / Double(lp[i].count) }
        return TOFUScores(answer: layout.map { mean($0.answer) }, paraphrased: layout.map { mean($0.paraphrased) },
                          perturbed: layout.map { $0.perturbed.map(mean) })
    }

    /// Per-question truth ratios of `model` (scoring only, no generation): what forget quality compares.
    public static func truthRatios(_ model: CausalLM, items: [TOFUItem], batchSize: Int = 32) throws -> [Double] {
        try tofuScores(model, items: items, batchSize: batchSize).truthRatios()
    }

    /// Everything TOFU measures on each question: the scores of `tofuScores` and the greedy answer
    /// (at most `maxNewTokens` tokens, batched with the KV cache, stopped at `eosTokenIds`), decoded.
    public static func tofuQuestions(_ model: CausalLM, items: [TOFUItem], maxNewTokens: Int, eosTokenIds: Set<Int>,
                                     batchSize: Int = 32, decode: ([Int]) -> String) throws -> [TOFU.Question] {
        let metric = "TOFU"
        let scores = try tofuScores(model, items: items, batchSize: batchSize)
        let generated: [[Int32]]
        do {
            generated = try ModelScoring.sample(model, prompts: items.map(\.prompt), length: maxNewTokens, seed: 0, eosTokenIds: eosTokenIds,
                                                temperature: 0, batchSize: batchSize)
        } catch let e as EvaluationError { throw EvaluationError(metric, "greedy answers: \(e.problem)") }
        return items.indices.map { i in
            TOFU.Question(answer: scores.answer[i], paraphrased: scores.paraphrased[i], perturbed: scores.perturbed[i],
                          generated: decode(generated[i].map(Int.init)), reference: items[i].reference)
        }
    }

    /// TOFU's three numbers on one split (see `TOFU.evaluate`): probability, ROUGE-L recall of the
    /// greedy answers and the truth-ratio summary, with the per-question truth ratios.
    public static func tofu(_ model: CausalLM, items: [TOFUItem], split: TOFU.Split, maxNewTokens: Int, eosTokenIds: Set<Int>,
                            batchSize: Int = 32, decode: ([Int]) -> String) throws -> TOFU.SplitResult {
        try TOFU.evaluate(tofuQuestions(model, items: items, maxNewTokens: maxNewTokens, eosTokenIds: eosTokenIds,
                                        batchSize: batchSize, decode: decode), split: split)
    }

    /// TOFU on several splits of one model, with model utility and, when a retrained model is given
    /// and a forget split is evaluated, forget quality.
    public struct TOFUReport: Sendable, Equatable, Codable {
        /// Per split (keyed by `TOFU.Split.rawValue`).
        public var splits: [String: TOFU.SplitResult]
        /// Harmonic mean of probability, ROUGE-L recall and truth ratio over every non-forget split
        /// evaluated (TOFU's nine numbers when retain, real authors and world facts are all given).
        public var modelUtility: Double?
        /// KS p-value of the forget split's truth ratios against the retrained model's.
        public var forgetQuality: Double?
        public var forgetKSStatistic: Double?
        /// The retrained model's truth-ratio summary (`.forget` form) on the forget split.
        public var retrainedForgetTruthRatio: Double?
    }

    public static func tofuReport(_ model: CausalLM, splits: [(split: TOFU.Split, items: [TOFUItem])], retrained: CausalLM? = nil,
                                  maxNewTokens: Int, eosTokenIds: Set<Int>, batchSize: Int = 32,
                                  decode: ([Int]) -> String) throws -> TOFUReport {
        let metric = "TOFU"
        try requireNonEmpty(splits, metric, "the split list")
        let names = splits.map(\.split)
        try require(Set(names).count == names.count, metric, "a split is listed twice: \(names.map(\.rawValue))")
        if let retrained { try requireCompatible(model, retrained, metric, "the model", "the retrained model") }
        var report = TOFUReport(splits: [:])
        var utilities: [TOFU.SplitResult] = []
        for (split, items) in splits {
            let r: TOFU.SplitResult
            do {
                r = try tofu(model, items: items, split: split, maxNewTokens: maxNewTokens, eosTokenIds: eosTokenIds,
                             batchSize: batchSize, decode: decode)
            } catch let e as EvaluationError { throw EvaluationError(metric, "\(split.rawValue) split: \(e.problem)") }
            report.splits[split.rawValue] = r
            if split == .forget {
                if let retrained {
                    let gold = try truthRatios(retrained, items: items, batchSize: batchSize)
                    let ks = try TOFU.forgetQuality(unlearnedTruthRatios: r.truthRatios, retrainedTruthRatios: gold)
                    report.forgetQuality = ks.pValue
                    report.forgetKSStatistic = ks.statistic
                    report.retrainedForgetTruthRatio = try TOFU.summarize(truthRatios: gold, as: .forget)
                }
            } else {
                utilities.append(r)
            }
        }
        if !utilities.isEmpty { report.modelUtility = try TOFU.modelUtility(splits: utilities) }
        return report
    }

    // MARK: Membership inference

    /// Min-k% log-probability of each pair's scored tokens (response given prompt; with an empty
    /// prompt every token after the first), in input order. Higher = more familiar.
    public static func minKPercent(_ model: CausalLM, pairs: [ScoredPair], k: Double, batchSize: Int = 32) throws -> [Double] {
        let metric = "Min-k% probability"
        try require(k > 0 && k <= 1, metric, "k must be in (0, 1], found \(k)")
        let lp: [[Double]]
        do { lp = try ModelScoring.tokenLogProbs(model, pairs, batchSize: batchSize, metric: metric) } catch let e as EvaluationError {
            throw EvaluationError(metric, e.problem)
        }
        return try lp.enumerated().map { i, x in
            do { return try MembershipInference.minKPercentLogProb(x, k: k) } catch let e as EvaluationError {
                throw EvaluationError(metric, "pair \(i): \(e.problem)")
            }
        }
    }

    /// A membership-inference attack on one model: Min-k% scores of the members (forget set) and
    /// non-members (holdout) and the ROC AUC separating them.
    public struct MembershipResult: Sendable, Equatable, Codable {
        public var auc: Double
        public var k: Double
        public var memberScores: [Double]
        public var nonMemberScores: [Double]
    }

    /// Min-k% probability AUC between `members` (forget set, positives) and `nonMembers` (holdout),
    /// as MUSE and TOFU report it. 0.5: the model cannot tell them apart.
    public static func membership(_ model: CausalLM, members: [ScoredPair], nonMembers: [ScoredPair], k: Double = 0.2,
                                  batchSize: Int = 32) throws -> MembershipResult {
        let metric = "membership inference"
        try requireNonEmpty(members, metric, "the member (forget) set")
        try requireNonEmpty(nonMembers, metric, "the non-member (holdout) set")
        let scores: [Double]
        do { scores = try minKPercent(model, pairs: members + nonMembers, k: k, batchSize: batchSize) } catch let e as EvaluationError {
            throw EvaluationError(metric, e.problem.replacingPairIndex(split: members.count))
        }
        let m = Array(scores[..<members.count]), n = Array(scores[members.count...])
        return MembershipResult(auc: try MembershipInference.rocAUC(members: m, nonMembers: n), k: k, memberScores: m, nonMemberScores: n)
    }

    /// The attack on an unlearned and a retrained model, and MUSE's privacy leakage
    /// (AUC_unlearned − AUC_retrained) / AUC_retrained.
    public static func privacyLeakage(_ model: CausalLM, retrained: CausalLM, members: [ScoredPair], nonMembers: [ScoredPair],
                                      k: Double = 0.2, batchSize: Int = 32) throws -> (unlearned: MembershipResult, retrained: MembershipResult, leakage: Double) {
        try requireCompatible(model, retrained, "privacy leakage", "the model", "the retrained model")
        let a = try membership(model, members: members, nonMembers: nonMembers, k: k, batchSize: batchSize)
        let b = try membership(retrained, members: members, nonMembers: nonMembers, k: k, batchSize: batchSize)
        return (a, b, try MembershipInference.privacyLeakage(unlearnedAUC: a.auc, retrainedAUC: b.auc))
    }
}

extension TOFU {
    /// Model utility over whole splits: the harmonic mean of each split's probability, ROUGE-L recall
    /// and truth ratio (TOFU: retain, real authors, world facts).
    public static func modelUtility(splits: [SplitResult]) throws -> Double {
        try requireNonEmpty(splits, "TOFU model utility", "the split list")
        return try modelUtility(splits.flatMap { [$0.probability, $0.rougeLRecall, $0.truthRatio] })
    }
}

private extension String {
    /// "pair 7: …" of a joined member+holdout list → "holdout pair 2: …" / "forget pair 7: …".
    func replacingPairIndex(split: Int) -> String {
        guard hasPrefix("pair "), let colon = firstIndex(of: ":"), let i = Int(self[index(startIndex, offsetBy: 5)..<colon]) else { return self }
        let rest = self[colon...]
        return i < split ? "forget (member) pair \(i)\(rest)" : "holdout (non-member) pair \(i - split)\(rest)"
    }
}
