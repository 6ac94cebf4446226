import Foundation

/// TOFU's metrics (Maini et al., 2024), computed exactly as its evaluation code does, from
/// length-normalised log-likelihoods (mean per-token log-likelihood = −"avg loss" in TOFU's logs).
public enum TOFU {
    /// Length-normalised answer probability P(a|q)^(1/|a|) = exp(mean per-token log-likelihood).
    public static func normalizedProbability(meanLogLikelihood: Double) -> Double { exp(meanLogLikelihood) }

    /// "Probability" on the forget and retain sets: the mean over questions of exp(mean LL of the answer).
    public static func probability(answerMeanLogLikelihoods ll: [Double]) throws -> Double {
        let metric = "TOFU probability"
        try requireNonEmpty(ll, metric, "the question set")
        try requireNoNaN(ll, metric, "the answer log-likelihoods")
        return ll.reduce(0) { $0 + exp($1) } / Double(ll.count)
    }

    /// "Probability" on the real-author and world-fact sets: the correct answer's normalised probability
    /// relative to all candidates, mean over questions of p(correct) / (p(correct) + Σ p(perturbed)).
    public static func probabilityAgainstPerturbed(correct: [Double], perturbed: [[Double]]) throws -> Double {
        let metric = "TOFU probability against perturbed answers"
        try requireNonEmpty(correct, metric, "the question set")
        try requireSameCount(correct, perturbed, metric, "correct answers", "perturbed answer lists")
        var total = 0.0
        for (i, (c, ps)) in zip(correct, perturbed).enumerated() {
            try require(!ps.isEmpty, metric, "question \(i) has no perturbed answers")
            try requireNoNaN([c] + ps, metric, "question \(i)'s log-likelihoods")
            // p_c / (p_c + Σ p_k) = 1 / (1 + Σ exp(ll_k − ll_c)): no underflow for very unlikely answers.
            total += 1 / (1 + ps.reduce(0) { $0 + exp($1 - c) })
        }
        return total / Double(correct.count)
    }

    /// Truth ratio of one question, as defined in the TOFU paper:
    ///
    ///     R = (Π_k P(â_k|q)^(1/|â_k|))^(1/K) / P(ã|q)^(1/|ã|) = exp(mean_k LL(â_k) − LL(ã))
    ///
    /// the geometric mean of the perturbed (wrong) answers' normalised probabilities over the
    /// paraphrased correct answer's. R ≪ 1: the model prefers the truth; R ≈ 1: it cannot tell.
    /// TOFU's code stores the reciprocal exp(L_perturbed − L_paraphrased) of losses; the KS test
    /// and the two summaries below are the same either way.
    public static func truthRatio(paraphrasedMeanLogLikelihood para: Double, perturbedMeanLogLikelihoods pert: [Double]) throws -> Double {
        let metric = "TOFU truth ratio"
        try require(!pert.isEmpty, metric, "no perturbed answers")
        try requireNoNaN([para] + pert, metric, "the answer log-likelihoods")
        return exp(pert.reduce(0, +) / Double(pert.count) - para)
    }

    /// Truth ratios of a question set (same order in both arrays).
    public static func truthRatios(paraphrased: [Double], perturbed: [[Double]]) throws -> [Double] {
        let metric = "TOFU truth ratio"
        try requireNonEmpty(paraphrased, metric, "the question set")
        try requireSameCount(paraphrased, perturbed, metric, "paraphrased answers", "perturbed answer lists")
        return try zip(paraphrased, perturbed).enumerated().map { i, qa in
            do { return try truthRatio(paraphrasedMeanLogLikelihood: qa.0, perturbedMeanLogLikelihoods: qa.1) } catch let e as EvaluationError {
                throw EvaluationError(metric, "question \(i): \(e.problem)")
            }
        }
    }

    /// How a set of truth ratios is summarised.
    public enum TruthRatioSummary: String, Sendable, CaseIterable, Codable {
        /// mean min(R, 1/R): what TOFU's code reports for the forget set (1 = cannot tell truth from lies).
        case forget
        /// mean (1 − min(R, 1/R)): the forget form oriented so that higher = more knowledge left.
        case oneMinusForget
        /// mean max(0, 1 − R): what TOFU reports for retain, real authors and world facts (higher = better).
        case retain
    }

    public static func summarize(truthRatios r: [Double], as form: TruthRatioSummary) throws -> Double {
        let metric = "TOFU truth ratio summary"
        try requireNonEmpty(r, metric, "the truth ratios")
        try requireNoNaN(r, metric, "the truth ratios")
        if let bad = r.first(where: { $0 < 0 }) { throw EvaluationError(metric, "a truth ratio is negative (\(bad))") }
        let terms: [Double]
        switch form {
        case .forget: terms = r.map { min($0, 1 / $0) }
        case .oneMinusForget: terms = r.map { 1 - min($0, 1 / $0) }
        case .retain: terms = r.map { max(0, 1 - $0) }
        }
        return terms.reduce(0, +) / Double(terms.count)
    }

    /// Forget quality: the p-value of the two-sided two-sample KS test between the unlearned model's and
    /// the retrained model's truth ratios on the forget set (scipy's `ks_2samp` default). High (→ 1):
    /// the two distributions are indistinguishable; low (e.g. < 0.05): the unlearned model is detectably
    /// different from one that never saw the data.
    public static func forgetQuality(unlearnedTruthRatios: [Double], retrainedTruthRatios: [Double]) throws -> KolmogorovSmirnov.Result {
        try KolmogorovSmirnov.twoSample(unlearnedTruthRatios, retrainedTruthRatios, metric: "TOFU forget quality")
    }

    /// Model utility: the harmonic mean of the utility metrics (TOFU: probability, ROUGE-L recall and
    /// truth ratio on retain, real authors and world facts — nine numbers). Any zero makes it zero.
    public static func modelUtility(_ metrics: [Double]) throws -> Double {
        try Statistics.harmonicMean(metrics, metric: "TOFU model utility")
    }
}

extension TOFU {
    /// What TOFU measures on one question, from the model being evaluated.
    public struct Question: Sendable, Codable {
        /// Mean per-token log-likelihood of the ground-truth answer.
        public var answer: Double
        /// Mean per-token log-likelihood of the paraphrased correct answer (for real authors and world
        /// facts TOFU uses the answer itself).
        public var paraphrased: Double
        /// Mean per-token log-likelihoods of the perturbed (wrong) answers.
        public var perturbed: [Double]
        /// The model's greedy answer and the reference it is scored against with ROUGE-L recall.
        public var generated: String
        public var reference: String

        public init(answer: Double, paraphrased: Double, perturbed: [Double], generated: String, reference: String) {
            self.answer = answer
            self.paraphrased = paraphrased
            self.perturbed = perturbed
            self.generated = generated
            self.reference = reference
        }
    }

    /// TOFU's four evaluation splits; they differ in which probability and truth-ratio form are reported.
    public enum Split: String, Sendable, CaseIterable, Codable {
        case forget, retain, realAuthors, worldFacts
    }

    /// The three numbers TOFU reports per split, plus the per-question truth ratios (for forget quality).
    public struct SplitResult: Equatable, Sendable, Codable {
        public var probability: Double
        public var rougeLRecall: Double
        public var truthRatio: Double
        public var truthRatios: [Double]
    }

    /// Scores one split as TOFU's `get_model_utility` does: forget/retain use the plain normalised
    /// probability, real authors/world facts the probability relative to the perturbed answers; the
    /// truth ratio is summarised as `.forget` on the forget split and `.retain` elsewhere.
    public static func evaluate(_ questions: [Question], split: Split) throws -> SplitResult {
        let metric = "TOFU \(split.rawValue) split"
        try requireNonEmpty(questions, metric, "the question set")
        let answers = questions.map(\.answer)
        let probability: Double
        switch split {
        case .forget, .retain: probability = try TOFU.probability(answerMeanLogLikelihoods: answers)
        case .realAuthors, .worldFacts:
            probability = try probabilityAgainstPerturbed(correct: answers, perturbed: questions.map(\.perturbed))
        }
        let ratios = try truthRatios(paraphrased: questions.map(\.paraphrased), perturbed: questions.map(\.perturbed))
        return SplitResult(
            probability: probability,
            rougeLRecall: try Rouge.meanRougeLRecall(references: questions.map(\.reference), predictions: questions.map(\.generated)),
            truthRatio: try summarize(truthRatios: ratios, as: split == .forget ? .forget : .retain),
            truthRatios: ratios)
    }

    /// TOFU's headline pair: model utility (harmonic mean of the nine non-forget numbers) and forget
    /// quality (KS p-value of forget-split truth ratios against the retrained model's).
    public struct Summary: Equatable, Sendable, Codable {
        public var modelUtility: Double
        public var forgetQuality: Double
        public var forgetKSStatistic: Double
    }

    public static func summarize(retain: SplitResult, realAuthors: SplitResult, worldFacts: SplitResult,
                                 forget: SplitResult, retrainedForgetTruthRatios: [Double]) throws -> Summary {
        let parts = [retain, realAuthors, worldFacts].flatMap { [$0.probability, $0.rougeLRecall, $0.truthRatio] }
        let ks = try forgetQuality(unlearnedTruthRatios: forget.truthRatios, retrainedTruthRatios: retrainedForgetTruthRatios)
        return Summary(modelUtility: try modelUtility(parts), forgetQuality: ks.pValue, forgetKSStatistic: ks.statistic)
    }
}
