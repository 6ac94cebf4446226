import Evaluation
import Foundation

/// The Markdown summary of a run: the paper's Table 1 shape, the recency check, the distance
/// to the retrained model and the path divergence — stating what was measured, with seeds
/// and spread, never the paper's conclusion.
public struct MarkdownReport {
    public var title: String
    public var analysis: ExperimentAnalysis
    /// Steps at which the table is shown (default: an early step and the last).
    public var tableSteps: [Int]
    /// τ of the "steps to forget score ≥ τ" table.
    public var speedThreshold: Double

    public init(title: String, analysis: ExperimentAnalysis, tableSteps: [Int]? = nil,
                speedThreshold: Double = EvaluationSpec.defaultSpeedThreshold) {
        self.title = title
        self.analysis = analysis
        self.speedThreshold = speedThreshold
        let steps = analysis.steps.filter { $0 > 0 }
        if let tableSteps { self.tableSteps = tableSteps }
        else if let last = steps.last {
            let early = steps.min(by: { abs(Double($0) - 0.4 * Double(last)) < abs(Double($1) - 0.4 * Double(last)) })!
            self.tableSteps = early == last ? [last] : [early, last]
        } else { self.tableSteps = [] }
    }

    static let tableMetrics: [(key: String, title: String)] = [
        ("forget_score", "forget score"), ("fact_utility", "fact utility"), ("math_accuracy_change", "math utility (Δ accuracy)"),
    ]

    /// Metrics of the privacy table: from the unlearned model's last record, or (`relative`) from
    /// its comparison with the retrained model.
    static let privacyMetrics: [(key: String, title: String, relative: Bool)] = [
        ("mia_auc", "Min-k% AUC", false), ("privacy_leakage", "privacy leakage", true),
        ("tofu_truth_ratio", "TOFU truth ratio", false), ("tofu_probability", "TOFU probability", false),
        ("tofu_rouge_l", "TOFU ROUGE-L", false), ("tofu_model_utility", "TOFU model utility", false),
        ("tofu_forget_truth_ratio", "TOFU forget truth ratio", false), ("tofu_forget_probability", "TOFU forget probability", false),
        ("tofu_forget_rouge_l", "TOFU forget ROUGE-L", false), ("forget_quality", "forget quality", true),
    ]

    /// Keys of the comparisons that are not distances.
    static func isDistanceKey(_ key: String) -> Bool { !key.hasPrefix("gap_") && key != "privacy_leakage" && key != "forget_quality" }

    public func render() -> String {
        var out = "# \(title)\n\n"
        let a = analysis
        out += "Seeds: \(a.seeds.map(String.init).joined(separator: ", ")). Values are the mean over seeds"
        out += a.seeds.count > 1 ? " ± half the range between seeds.\n\n" : " (one seed: no spread can be given).\n\n"
        for step in tableSteps {
            let metrics = Self.tableMetrics.filter { m in a.records.contains { $0.metrics[m.key] != nil && $0.step == step } }
            guard !metrics.isEmpty else { continue }
            out += "## After \(step) unlearning step\(step == 1 ? "" : "s")\n\n"
            var header = "| path |"
            var rule = "| --- |"
            for algorithm in a.algorithms { for m in metrics { header += " \(algorithm): \(m.title) |"; rule += " --- |" } }
            out += header + "\n" + rule + "\n"
            for p in a.positions {
                var row = "| p=\(p) |"
                for algorithm in a.algorithms {
                    for m in metrics { row += " \(a.statistic(m.key, algorithm: algorithm, position: p, step: step)?.formatted() ?? "—") |" }
                }
                out += row + "\n"
            }
            out += "\n"
        }
        let findings = a.recency().filter { !$0.windowMeans.isEmpty }
        if !findings.isEmpty {
            out += "## Does the path that learned the forget set last unlearn slowest?\n\n"
            out += "Mean forget score over the unlearning steps after 0 (higher = faster forgetting), per position of the forget stage.\n\n"
            out += "| algorithm | " + a.positions.map { "p=\($0)" }.joined(separator: " | ") + " | last slowest | strictly ordered p1 > … > p\(a.positions.last!) |\n"
            out += "| --- |" + String(repeating: " --- |", count: a.positions.count + 2) + "\n"
            for f in findings {
                out += "| \(f.algorithm) | " + a.positions.map { f.windowMeans[$0]?.formatted() ?? "—" }.joined(separator: " | ")
                out += " | \(f.seedsWhereLastIsSlowest) of \(f.seedsMeasured) seeds | \(f.seedsMonotone) of \(f.seedsMeasured) seeds |\n"
            }
            out += "\n"
        }
        out += speedSection()
        out += massSection()
        out += privacySection()
        let retrainedMetrics = a.metricNames.filter { a.retrained($0) != nil }
        if !retrainedMetrics.isEmpty {
            out += "## The retrained model (trained without the forget stage)\n\n| metric | value |\n| --- | --- |\n"
            for m in retrainedMetrics { out += "| \(m) | \(a.retrained(m)!.formatted(3)) |\n" }
            out += "\n"
        }
        for algorithm in a.algorithms {
            guard let first = a.comparisons.first(where: { $0.algorithm == algorithm }) else { continue }
            // Rows are indexed by the first seed's labels: seeds with other paths (a damaged or
            // mixed run directory) would index out of range.
            let rows = a.comparisons.filter { $0.algorithm == algorithm && $0.labels == first.labels }
            let keys = Array(Set(first.toRetrained.flatMap { $0.keys })).filter(Self.isDistanceKey).sorted()
            if !keys.isEmpty {
                out += "## Distance to the retrained model after unlearning: \(algorithm)\n\n| path | " + keys.joined(separator: " | ") + " |\n"
                out += "| --- |" + String(repeating: " --- |", count: keys.count) + "\n"
                for (i, label) in first.labels.enumerated() {
                    out += "| \(label) | " + keys.map { k in SeedStatistic(rows.compactMap { $0.toRetrained[i][k] })?.formatted(3) ?? "—" }.joined(separator: " | ") + " |\n"
                }
                out += "\n"
            }
            let gaps = Array(Set(first.toRetrained.flatMap { $0.keys })).filter { $0.hasPrefix("gap_") }.sorted()
            if !gaps.isEmpty {
                out += "## Gap to the retrained model after unlearning: \(algorithm)\n\n"
                out += "Unlearned − retrained, at the last evaluated step (0 = retrain-equivalent on that metric; forget score, fact utility and Δ math accuracy of the retrained model are taken against the same path's model before unlearning).\n\n"
                out += "| metric | " + first.labels.joined(separator: " | ") + " |\n"
                out += "| --- |" + String(repeating: " --- |", count: first.labels.count) + "\n"
                for k in gaps {
                    out += "| \(k.dropFirst(4)) | " + first.labels.indices.map { i in SeedStatistic(rows.compactMap { $0.toRetrained[i][k] })?.formatted(3) ?? "—" }.joined(separator: " | ") + " |\n"
                }
                out += "\n"
            }
            if let (labels, matrix) = a.meanDivergence(algorithm: algorithm) {
                out += "## Path divergence (Jeffreys) after unlearning: \(algorithm)\n\n| | " + labels.joined(separator: " | ") + " |\n"
                out += "| --- |" + String(repeating: " --- |", count: labels.count) + "\n"
                for (i, label) in labels.enumerated() {
                    out += "| \(label) | " + matrix[i].map { String(format: "%.3f", $0) }.joined(separator: " | ") + " |\n"
                }
                out += "\n"
            }
        }
        return out
    }

    /// Steps until the forget score reaches τ, per algorithm and position.
    func speedSection() -> String {
        let a = analysis
        guard a.records.contains(where: { $0.metrics["forget_score"] != nil && $0.algorithm != "retrained" }), !a.positions.isEmpty else { return "" }
        var out = "## Unlearning speed: steps to forget score ≥ \(formatNumber(speedThreshold))\n\n"
        out += "The first unlearning step at which the forget score reaches τ = \(formatNumber(speedThreshold)) (linear interpolation between evaluated steps; fewer = faster; \"not reached\" = not within the run's \(a.steps.last ?? 0) steps). Set τ with `evaluation.speed_threshold`."
        out += a.seeds.count > 1 ? " One value per seed (seeds \(a.seeds.map(String.init).joined(separator: ", "))).\n\n" : "\n\n"
        out += "| path | " + a.algorithms.joined(separator: " | ") + " |\n| --- |" + String(repeating: " --- |", count: a.algorithms.count) + "\n"
        for p in a.positions {
            out += "| p=\(p) |"
            for algorithm in a.algorithms {
                let perSeed = a.stepsToThreshold(threshold: speedThreshold, algorithm: algorithm, position: p)
                let cells = a.seeds.map { seed -> String in
                    guard let value = perSeed[seed] else { return "—" }
                    return value.map { String(format: "%.1f", $0) } ?? "not reached"
                }
                out += " \(cells.joined(separator: " / ")) |"
            }
            out += "\n"
        }
        return out + "\n"
    }

    /// Membership inference and TOFU's metrics of each unlearned model at its last step, with the
    /// retrained model's values.
    func privacySection() -> String {
        let a = analysis
        var out = ""
        for algorithm in a.algorithms {
            let comparisons = a.comparisons.filter { $0.algorithm == algorithm }
            func value(_ key: String, relative: Bool, position: Int) -> SeedStatistic? {
                if !relative { return SeedStatistic(a.finalRecords(algorithm: algorithm, position: position).compactMap { $0.metrics[key] }) }
                return SeedStatistic(comparisons.compactMap { c in c.labels.firstIndex(of: "p=\(position)").flatMap { c.toRetrained[$0][key] } })
            }
            let columns = Self.privacyMetrics.filter { m in a.positions.contains { value(m.key, relative: m.relative, position: $0) != nil } }
            guard !columns.isEmpty else { continue }
            let step = a.steps.last ?? 0
            out += "## Membership inference and TOFU after \(step) unlearning step\(step == 1 ? "" : "s"): \(algorithm)\n\n"
            out += "Min-k% AUC: forget set (members) vs holdout; 0.5 = indistinguishable. Privacy leakage = (AUC − AUC_retrained) / AUC_retrained: > 0 the forget set is still recognisable, < 0 over-unlearned. TOFU truth ratio: mean max(0, 1 − R) on retained facts (higher = prefers the truth), forget truth ratio mean min(R, 1/R); forget quality = KS p-value against the retrained model (→ 1 = indistinguishable).\n\n"
            out += "| path | " + columns.map(\.title).joined(separator: " | ") + " |\n| --- |" + String(repeating: " --- |", count: columns.count) + "\n"
            for p in a.positions {
                out += "| p=\(p) | " + columns.map { value($0.key, relative: $0.relative, position: p)?.formatted(3) ?? "—" }.joined(separator: " | ") + " |\n"
            }
            out += "| retrained | " + columns.map { $0.relative ? "—" : (a.retrained($0.key)?.formatted(3) ?? "—") }.joined(separator: " | ") + " |\n\n"
        }
        return out
    }

    /// Where the probability mass of U went, per stage order (paper §4.3).
    func massSection() -> String {
        let outcomes = analysis.massOutcomes()
        guard !outcomes.isEmpty else { return "" }
        let rule = MassClassificationRule()
        var out = "## Where the probability mass went (C, U, R)\n\n"
        out += "Per stage order: the prompt-mean sequence log-likelihood (nats) of C (compliance, the paraphrase), U (compliance, "
        out += "the unlearning target) and R (refusal) before unlearning → after the last step, the mean share of U among the three, "
        out += "and the outcome by the documented rule: **deep** = U fell by at least \(rule.minimumDrop.formatted()) nat and C ended below R; "
        out += "**superficial** = U fell but C stayed at or above R (the mass moved to the paraphrase); **none** = U fell less.\n\n"
        out += "| algorithm | order | log π(C) | log π(U) | log π(R) | share of U | outcome |\n| --- | --- | --- | --- | --- | --- | --- |\n"
        for o in outcomes {
            func pair(_ a: SeedStatistic, _ b: SeedStatistic) -> String { "\(a.formatted(1)) → \(b.formatted(1))" }
            let share = [o.initialShareU, o.finalShareU].map { $0.map { String(format: "%.3f", $0.mean) } ?? "—" }.joined(separator: " → ")
            let counts = ForgettingDepth.allCases.compactMap { d -> String? in
                let n = o.depths.filter { $0 == d }.count
                return n == 0 ? nil : "\(d.rawValue) (\(n) of \(o.depths.count) seed\(o.depths.count == 1 ? "" : "s"))"
            }.joined(separator: ", ")
            out += "| \(o.algorithm) | \(o.path.joined(separator: " → ")) | \(pair(o.initial.c, o.final.c)) | \(pair(o.initial.u, o.final.u)) | "
            out += "\(pair(o.initial.r, o.final.r)) | \(share) | \(counts.isEmpty ? "—" : counts) |\n"
        }
        return out + "\n"
    }
}
