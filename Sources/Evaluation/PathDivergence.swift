/// Divergence between two models (e.g. the unlearned models of two paths) estimated from sequences
/// sampled from each of them, with the k3 estimator.
public enum PathDivergence {
    /// Sequences sampled from one model (the sampler), each scored token by token by the sampler and
    /// by another model: `sampler[i][t]` = log s(y_t | x, y_<t), `other[i][t]` = log o(y_t | x, y_<t).
    public struct ScoredSamples: Sendable, Codable {
        public var sampler: [[Double]]
        public var other: [[Double]]
        public init(sampler: [[Double]], other: [[Double]]) {
            self.sampler = sampler
            self.other = other
        }
    }

    /// How token-level k3 terms k(t) = (log s − log o) + (exp(log o − log s) − 1) are reduced.
    public enum Level: String, Sendable, CaseIterable, Codable {
        /// Mean over all sampled tokens: KL per token (nats/token). The default.
        case token
        /// Σ_t k(t) per sequence, mean over sequences: an unbiased estimate of the sequence-level KL
        /// (chain rule), in nats per sequence.
        case sequence
        /// k3 applied once per sequence to the summed log-ratio: also unbiased for the sequence KL but with a
        /// heavy right tail (exp of a sum); included for comparison.
        case sequenceRatio
    }

    /// KL(s ‖ o) estimated from samples of s.
    public static func kl(_ samples: ScoredSamples, level: Level = .token) throws -> Double {
        let metric = "path divergence (k3)"
        try requireNonEmpty(samples.sampler, metric, "the sample set")
        try requireSameCount(samples.sampler, samples.other, metric, "sampler-scored sequences", "other-scored sequences")
        var total = 0.0, tokens = 0
        for (i, (s, o)) in zip(samples.sampler, samples.other).enumerated() {
            try require(!s.isEmpty, metric, "sequence \(i) has no tokens")
            try require(s.count == o.count, metric, "sequence \(i) has \(s.count) sampler log-probs but \(o.count) from the other model")
            try requireNoNaN(s, metric, "sequence \(i) (sampler)")
            try requireNoNaN(o, metric, "sequence \(i) (other model)")
            switch level {
            case .token, .sequence:
                for (a, b) in zip(s, o) { total += Distance.k3Term(a, b) }
            case .sequenceRatio:
                total += Distance.k3Term(s.reduce(0, +), o.reduce(0, +))
            }
            tokens += s.count
        }
        return level == .token ? total / Double(tokens) : total / Double(samples.sampler.count)
    }

    /// Jeffreys divergence J(p, q) = KL(p ‖ q) + KL(q ‖ p), each direction from its own model's samples.
    public struct Jeffreys: Equatable, Sendable, Codable {
        public var pq: Double
        public var qp: Double
        public var total: Double { pq + qp }
    }

    /// `fromP`: samples of p scored by p (sampler) and q (other); `fromQ`: samples of q scored by q and p.
    public static func jeffreys(fromP: ScoredSamples, fromQ: ScoredSamples, level: Level = .token) throws -> Jeffreys {
        Jeffreys(pq: try kl(fromP, level: level), qp: try kl(fromQ, level: level))
    }

    /// Symmetric matrix of Jeffreys divergences between n models (paths), zero on the diagonal.
    ///
    /// `logProbs[i][j]` holds the samples drawn from model i scored by model j (so `logProbs[i][i]` is the
    /// sampler's own scoring). J[i][j] = KL(i ‖ j) from i's samples + KL(j ‖ i) from j's samples.
    public static func pairwiseJeffreys(logProbs: [[[[Double]]]], level: Level = .token) throws -> [[Double]] {
        let metric = "pairwise path divergence"
        let n = logProbs.count
        try require(n >= 1, metric, "no models")
        for (i, row) in logProbs.enumerated() {
            try require(row.count == n, metric, "model \(i)'s samples are scored by \(row.count) models, expected \(n)")
        }
        var kl = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for i in 0..<n {
            for j in 0..<n where i != j {
                do {
                    kl[i][j] = try Self.kl(ScoredSamples(sampler: logProbs[i][i], other: logProbs[i][j]), level: level)
                } catch let e as EvaluationError {
                    throw EvaluationError(metric, "samples of model \(i) scored by model \(j): \(e.problem)")
                }
            }
        }
        var out = kl
        for i in 0..<n { for j in 0..<n { out[i][j] = i == j ? 0 : kl[i][j] + kl[j][i] } }
        return out
    }
}
