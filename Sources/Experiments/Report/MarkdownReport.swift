import Foundation

/// The Markdown summary of a run: the paper's Table 1 shape, the recency check, the distance
/// to the retrained model and the path divergence — stating what was measured, with seeds
/// and spread, never the paper's conclusion.
public struct MarkdownReport {
    public var title: String
    public var analysis: ExperimentAnalysis
    /// Steps at which the table is shown (default: an early step and the last).
    public var tableSteps: [Int]

    public init(title: String, analysis: ExperimentAnalysis, tableSteps: [Int]? = nil) {
        self.title = title
        self.analysis = analysis
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
        let findings = a.recency()
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
        let retrainedMetrics = a.metricNames.filter { a.retrained($0) != nil }
        if !retrainedMetrics.isEmpty {
            out += "## The retrained model (trained without the forget stage)\n\n| metric | value |\n| --- | --- |\n"
            for m in retrainedMetrics { out += "| \(m) | \(a.retrained(m)!.formatted(3)) |\n" }
            out += "\n"
        }
        for algorithm in a.algorithms {
            let rows = a.comparisons.filter { $0.algorithm == algorithm }
            guard let first = rows.first else { continue }
            let keys = Array(Set(first.toRetrained.flatMap { $0.keys })).sorted()
            if !keys.isEmpty {
                out += "## Distance to the retrained model after unlearning: \(algorithm)\n\n| path | " + keys.joined(separator: " | ") + " |\n"
                out += "| --- |" + String(repeating: " --- |", count: keys.count) + "\n"
                for (i, label) in first.labels.enumerated() {
                    out += "| \(label) | " + keys.map { k in SeedStatistic(rows.compactMap { $0.toRetrained[i][k] })?.formatted(3) ?? "—" }.joined(separator: " | ") + " |\n"
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
}
