/// Membership inference as MUSE and TOFU use it to measure privacy leakage.
public enum MembershipInference {
    /// Min-k% probability (Shi et al.): the mean of the lowest ⌊k·n⌋ token log-probabilities of a text.
    /// Higher (less negative) = the text looks more familiar = more likely a training member.
    /// MUSE stores the negation of this value as its "Min-k%" score. Throws if ⌊k·n⌋ = 0 (the text is too
    /// short for this k; MUSE would get NaN).
    public static func minKPercentLogProb(_ tokenLogProbs: [Double], k: Double) throws -> Double {
        let metric = "Min-k% probability"
        try require(k > 0 && k <= 1, metric, "k must be in (0, 1], found \(k)")
        try requireNoNaN(tokenLogProbs, metric, "the token log-probabilities")
        let count = Int((Double(tokenLogProbs.count) * k).rounded(.down))
        try require(count > 0, metric, "⌊k·n⌋ = 0 for n = \(tokenLogProbs.count) tokens and k = \(k); the text is too short")
        let lowest = tokenLogProbs.sorted().prefix(count)
        return lowest.reduce(0, +) / Double(count)
    }

    /// ROC AUC of separating `members` (positives, e.g. forget set) from `nonMembers` (e.g. holdout) by a
    /// score where higher means "member": P(score_member > score_non) + ½·P(tie), i.e. the Mann–Whitney
    /// U / (n₁n₀) with average ranks for ties — what `sklearn.metrics.roc_auc_score` returns.
    /// 0.5: indistinguishable; 1: every member scores above every non-member.
    public static func rocAUC(members: [Double], nonMembers: [Double]) throws -> Double {
        let metric = "ROC AUC"
        try requireNonEmpty(members, metric, "the member scores")
        try requireNonEmpty(nonMembers, metric, "the non-member scores")
        try requireNoNaN(members, metric, "the member scores")
        try requireNoNaN(nonMembers, metric, "the non-member scores")
        let ranks = Statistics.averageRanks(members + nonMembers)
        let n1 = Double(members.count), n0 = Double(nonMembers.count)
        let rankSum = ranks[0..<members.count].reduce(0, +)
        return (rankSum - n1 * (n1 + 1) / 2) / (n1 * n0)
    }

    /// MUSE's privacy leakage: PrivLeak = (AUC_unlearned − AUC_retrained) / AUC_retrained, with both AUCs
    /// computed on the same forget-vs-holdout split. ≈ 0: as private as retraining; > 0: the forget set is
    /// still recognisable (under-unlearning); < 0: it stands out by being *less* familiar (over-unlearning).
    /// MUSE reports it ×100 as a percentage.
    public static func privacyLeakage(unlearnedAUC: Double, retrainedAUC: Double) throws -> Double {
        let metric = "privacy leakage"
        try require(unlearnedAUC.isFinite && unlearnedAUC >= 0 && unlearnedAUC <= 1, metric, "unlearned AUC must be in [0, 1], found \(unlearnedAUC)")
        try require(retrainedAUC.isFinite && retrainedAUC > 0 && retrainedAUC <= 1, metric, "retrained AUC must be in (0, 1], found \(retrainedAUC)")
        return (unlearnedAUC - retrainedAUC) / retrainedAUC
    }
}
