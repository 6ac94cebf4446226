/// How fast a run forgets: the number of steps until the forget score reaches a threshold.
public enum UnlearningSpeed {
    /// The step at which `scores` first reaches `threshold` (score ≥ threshold).
    ///
    /// `steps` are the unlearning steps at which the scores were measured (strictly increasing, e.g.
    /// 0, 1, 2, …). With `interpolate` the crossing is placed by linear interpolation between the last
    /// step below and the first step at/above the threshold; otherwise the first step at/above is returned.
    /// If the very first measurement already reaches it, that step is returned. nil: never reached.
    public static func stepsToThreshold(steps: [Double], scores: [Double], threshold: Double,
                                        interpolate: Bool = true) throws -> Double? {
        let metric = "unlearning speed"
        try requireNonEmpty(scores, metric, "the score curve")
        try requireSameCount(steps, scores, metric, "steps", "scores")
        try requireNoNaN(scores, metric, "the scores")
        try requireFinite(steps, metric, "the steps")
        try require(!threshold.isNaN, metric, "threshold is NaN")
        for i in 1..<max(steps.count, 1) where steps[i] <= steps[i - 1] {
            throw EvaluationError(metric, "steps must increase strictly; step \(i) is \(steps[i]) after \(steps[i - 1])")
        }
        guard let i = scores.firstIndex(where: { $0 >= threshold }) else { return nil }
        if i == 0 || !interpolate { return steps[i] }
        let s0 = scores[i - 1], s1 = scores[i]
        return steps[i - 1] + (threshold - s0) / (s1 - s0) * (steps[i] - steps[i - 1])
    }

    /// Same, with the scores measured at steps 0, 1, 2, ….
    public static func stepsToThreshold(scores: [Double], threshold: Double, interpolate: Bool = true) throws -> Double? {
        try stepsToThreshold(steps: scores.indices.map(Double.init), scores: scores, threshold: threshold, interpolate: interpolate)
    }
}
