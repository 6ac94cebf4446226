/// The log-likelihood of one response under a model: log π(y | x) = Σ_t log π(y_t | x, y_<t),
/// over the response tokens only.
public struct SequenceLogLikelihood: Equatable, Sendable, Codable {
    /// Σ_t log π(y_t | x, y_<t) (nats, ≤ 0).
    public var sum: Double
    /// Number of response tokens |y|.
    public var tokenCount: Int
    /// sum / |y|: the length-normalised log-likelihood (what "per-token log-likelihood" means here).
    public var mean: Double { sum / Double(tokenCount) }

    /// From the per-token log-probabilities of the response tokens. Throws on an empty response or NaN.
    public init(tokenLogProbs: [Double], metric: String = "log-likelihood") throws {
        try require(!tokenLogProbs.isEmpty, metric, "a response has no tokens; every scored response needs at least one")
        try requireNoNaN(tokenLogProbs, metric, "the token log-probabilities")
        sum = tokenLogProbs.reduce(0, +)
        tokenCount = tokenLogProbs.count
    }

    /// From an already summed log-likelihood and its token count.
    public init(sum: Double, tokenCount: Int, metric: String = "log-likelihood") throws {
        try require(tokenCount > 0, metric, "token count must be > 0, found \(tokenCount)")
        try require(!sum.isNaN, metric, "the summed log-likelihood is NaN")
        self.sum = sum
        self.tokenCount = tokenCount
    }
}

/// How a set of sequences is reduced to one number.
public enum LogLikelihoodAveraging: String, Sendable, CaseIterable, Codable {
    /// Mean over sequences of each sequence's per-token mean: every sequence weighs the same.
    case sequenceMean
    /// Σ sums / Σ token counts: every token weighs the same (long responses dominate).
    case tokenWeighted
}

/// Aggregates of log-likelihoods over an evaluation set.
public struct LogLikelihoodSummary: Equatable, Sendable {
    public var sequences: [SequenceLogLikelihood]
    public var count: Int { sequences.count }
    public var totalTokens: Int { sequences.reduce(0) { $0 + $1.tokenCount } }
    /// Mean over sequences of the summed log-likelihood.
    public var meanSum: Double { sequences.reduce(0) { $0 + $1.sum } / Double(count) }
    /// Mean over sequences of the per-token mean log-likelihood.
    public var meanPerToken: Double { sequences.reduce(0) { $0 + $1.mean } / Double(count) }
    /// Σ sum / Σ tokens.
    public var tokenWeightedMean: Double { sequences.reduce(0) { $0 + $1.sum } / Double(totalTokens) }

    public func mean(_ averaging: LogLikelihoodAveraging) -> Double {
        switch averaging {
        case .sequenceMean: return meanPerToken
        case .tokenWeighted: return tokenWeightedMean
        }
    }

    /// Throws on an empty set, an empty response, or NaN.
    public init(sequences: [SequenceLogLikelihood], metric: String = "log-likelihood summary") throws {
        try requireNonEmpty(sequences, metric, "the evaluation set")
        self.sequences = sequences
    }

    /// From per-token log-probabilities, one array per response.
    public init(tokenLogProbs: [[Double]], metric: String = "log-likelihood summary") throws {
        try requireNonEmpty(tokenLogProbs, metric, "the evaluation set")
        var seqs = [SequenceLogLikelihood]()
        seqs.reserveCapacity(tokenLogProbs.count)
        for (i, lp) in tokenLogProbs.enumerated() {
            do { seqs.append(try SequenceLogLikelihood(tokenLogProbs: lp, metric: metric)) } catch let e as EvaluationError {
                throw EvaluationError(metric, "sequence \(i): \(e.problem)")
            }
        }
        self.sequences = seqs
    }
}

/// The paper's forgetting and utility scores, computed from log-likelihoods before and after unlearning.
public enum UnlearningScores {
    /// Forget score: how much the refusal target and its paraphrases became less likely.
    ///
    ///     forget = mean LL_before − mean LL_after
    ///
    /// where mean LL is the average per-token log-likelihood of every (forget prompt, refusal phrasing)
    /// pair, the phrasings being the refusal target and its paraphrases. `before` is the baseline model
    /// (before unlearning), `after` the model being scored; the two sets must list the same pairs in the
    /// same order. Higher = more forgetting; 0 = nothing changed; negative = the refusals became *more* likely.
    public static func forgetScore(before: LogLikelihoodSummary, after: LogLikelihoodSummary,
                                   averaging: LogLikelihoodAveraging = .sequenceMean) throws -> Double {
        let metric = "forget score"
        try requireSameCount(before.sequences, after.sequences, metric, "the baseline set", "the unlearned set")
        for (i, (b, a)) in zip(before.sequences, after.sequences).enumerated() where b.tokenCount != a.tokenCount {
            throw EvaluationError(metric, "pair \(i) has \(b.tokenCount) tokens in the baseline but \(a.tokenCount) after; score the same token sequences")
        }
        return before.mean(averaging) - after.mean(averaging)
    }

    /// Forget score from per-token log-probabilities, one array per (prompt, phrasing) pair.
    public static func forgetScore(before: [[Double]], after: [[Double]],
                                   averaging: LogLikelihoodAveraging = .sequenceMean) throws -> Double {
        let metric = "forget score"
        return try forgetScore(before: LogLikelihoodSummary(tokenLogProbs: before, metric: metric),
                               after: LogLikelihoodSummary(tokenLogProbs: after, metric: metric),
                               averaging: averaging)
    }

    /// Fact utility: 1 − |Δ mean per-token log-likelihood of the entity (fictitious-author) answers|.
    ///
    ///     utility = 1 − |mean LL_after − mean LL_before|
    ///
    /// 1 = the answers' likelihood did not move; it falls by one per nat of change in either direction
    /// and can go negative.
    public static func factUtility(before: LogLikelihoodSummary, after: LogLikelihoodSummary,
                                   averaging: LogLikelihoodAveraging = .sequenceMean) throws -> Double {
        let metric = "fact utility"
        try requireSameCount(before.sequences, after.sequences, metric, "the baseline set", "the unlearned set")
        return 1 - abs(after.mean(averaging) - before.mean(averaging))
    }

    public static func factUtility(before: [[Double]], after: [[Double]],
                                   averaging: LogLikelihoodAveraging = .sequenceMean) throws -> Double {
        let metric = "fact utility"
        return try factUtility(before: LogLikelihoodSummary(tokenLogProbs: before, metric: metric),
                               after: LogLikelihoodSummary(tokenLogProbs: after, metric: metric),
                               averaging: averaging)
    }
}
