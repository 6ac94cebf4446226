import Foundation

/// Distances between an unlearned model and the retrained model (or between any two models),
/// from log-probabilities both models assign on the same inputs.
public enum Distance {
    /// Mean over all probe tokens of (log p_a(t) − log p_b(t))²: both arrays list the same sequences
    /// and tokens. 0 = identical per-token log-probabilities.
    public static func meanSquaredLogProbDifference(_ a: [[Double]], _ b: [[Double]]) throws -> Double {
        let metric = "mean squared log-probability difference"
        try requireNonEmpty(a, metric, "the probe set")
        try requireSameCount(a, b, metric, "the first model's sequences", "the second model's sequences")
        var total = 0.0, count = 0
        for (i, (x, y)) in zip(a, b).enumerated() {
            try require(x.count == y.count, metric, "sequence \(i) has \(x.count) tokens for the first model and \(y.count) for the second")
            try requireFinite(x, metric, "sequence \(i) (first model)")
            try requireFinite(y, metric, "sequence \(i) (second model)")
            for (u, v) in zip(x, y) { total += (u - v) * (u - v) }
            count += x.count
        }
        try require(count > 0, metric, "the probe set has no tokens")
        return total / Double(count)
    }

    /// Mean over positions of KL(p ‖ q) = Σ_v p(v)(log p(v) − log q(v)), from full next-token
    /// distributions given as log-probability rows (row-major, `vocabularySize` entries per position).
    ///
    /// Each row must be a normalised log-distribution (log Σ exp within 1e-3 of 0) — this catches raw
    /// logits passed by mistake. Entries of −∞ are probability zero; p > 0 where q = 0 gives +∞.
    public static func klDivergence(p: [Double], q: [Double], vocabularySize: Int) throws -> Double {
        let metric = "KL divergence"
        try require(vocabularySize > 0, metric, "vocabulary size must be > 0, found \(vocabularySize)")
        try require(p.count == q.count, metric, "p has \(p.count) entries but q has \(q.count)")
        try require(!p.isEmpty, metric, "no positions")
        try require(p.count % vocabularySize == 0, metric, "\(p.count) entries is not a whole number of rows of \(vocabularySize)")
        let rows = p.count / vocabularySize
        var total = 0.0
        try p.withUnsafeBufferPointer { pp in
            try q.withUnsafeBufferPointer { qq in
                for r in 0..<rows {
                    let base = r * vocabularySize
                    var kl = 0.0, massP = 0.0, massQ = 0.0
                    for v in 0..<vocabularySize {
                        let lp = pp[base + v], lq = qq[base + v]
                        if lp.isNaN || lq.isNaN { throw EvaluationError(metric, "NaN in row \(r), entry \(v)") }
                        let prob = exp(lp)
                        massP += prob
                        massQ += exp(lq)
                        if prob > 0 { kl += prob * (lp - lq) }
                    }
                    try require(abs(massP - 1) < 1e-3, metric, "row \(r) of p is not a log-distribution (Σ exp = \(massP)); pass log-softmax, not logits")
                    try require(abs(massQ - 1) < 1e-3, metric, "row \(r) of q is not a log-distribution (Σ exp = \(massQ)); pass log-softmax, not logits")
                    total += kl
                }
            }
        }
        return total / Double(rows)
    }

    /// KL in both directions from full distributions: (KL(p‖q), KL(q‖p)).
    public static func klBothDirections(p: [Double], q: [Double], vocabularySize: Int) throws -> (pq: Double, qp: Double) {
        (try klDivergence(p: p, q: q, vocabularySize: vocabularySize), try klDivergence(p: q, q: p, vocabularySize: vocabularySize))
    }

    /// The k3 estimator of KL(s ‖ o) from tokens sampled from s: mean over tokens of
    /// (log s − log o) + (exp(log o − log s) − 1). Each term is ≥ 0 and unbiased for the per-token KL.
    /// With s = q and o = p this is the paper's mean((log q − log p) + (exp(log p − log q) − 1)).
    public static func k3(samplerLogProbs s: [Double], otherLogProbs o: [Double]) throws -> Double {
        let metric = "k3 KL estimator"
        try requireNonEmpty(s, metric, "the sampled tokens")
        try requireSameCount(s, o, metric, "sampler log-probabilities", "other-model log-probabilities")
        try requireNoNaN(s, metric, "sampler log-probabilities")
        try requireNoNaN(o, metric, "other-model log-probabilities")
        var total = 0.0
        for (a, b) in zip(s, o) { total += k3Term(a, b) }
        return total / Double(s.count)
    }

    @inline(__always)
    static func k3Term(_ logS: Double, _ logO: Double) -> Double {
        let r = logO - logS
        return -r + expm1(r)
    }

    /// Differences unlearned − retrained for every metric both dictionaries name (the "gap to retrain").
    /// Throws if the two sets of metric names differ.
    public static func gaps(unlearned: [String: Double], retrained: [String: Double]) throws -> [String: Double] {
        let metric = "retrain gap"
        let a = Set(unlearned.keys), b = Set(retrained.keys)
        try require(a == b, metric, "metrics differ: only unlearned \(a.subtracting(b).sorted()), only retrained \(b.subtracting(a).sorted())")
        var out = [String: Double]()
        for k in a { out[k] = unlearned[k]! - retrained[k]! }
        return out
    }
}
