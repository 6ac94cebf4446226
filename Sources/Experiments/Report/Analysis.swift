import Evaluation
import Foundation

/// What a run measured, aggregated over seeds: the numbers behind the report.
public struct ExperimentAnalysis: Sendable {
    public var records: [MetricRecord]
    public var comparisons: [ComparisonRecord]

    public init(records: [MetricRecord], comparisons: [ComparisonRecord] = []) {
        self.records = records; self.comparisons = comparisons
    }

    public var algorithms: [String] { ordered(records.filter { $0.algorithm != "retrained" }.map(\.algorithm)) }
    public var positions: [Int] { Array(Set(records.compactMap(\.position))).sorted() }
    public var seeds: [Int] { Array(Set(records.map(\.seed))).sorted() }
    public var steps: [Int] { Array(Set(records.filter { $0.algorithm != "retrained" }.map(\.step))).sorted() }
    public var metricNames: [String] { Array(Set(records.flatMap { $0.metrics.keys })).sorted() }

    /// The value of `metric` for one algorithm, position and step, over seeds.
    public func statistic(_ metric: String, algorithm: String, position: Int, step: Int) -> SeedStatistic? {
        SeedStatistic(records.filter { $0.algorithm == algorithm && $0.position == position && $0.step == step }.compactMap { $0.metrics[metric] })
    }

    /// One curve per position: (step, statistic over seeds).
    public func curve(_ metric: String, algorithm: String, position: Int) -> [(step: Int, value: SeedStatistic)] {
        steps.compactMap { s in statistic(metric, algorithm: algorithm, position: position, step: s).map { (s, $0) } }
    }

    /// Mean of `metric` over the evaluated steps after 0 (the area under the curve divided by its
    /// length), for one seed: how fast a path forgets over the whole window.
    public func windowMean(_ metric: String, algorithm: String, position: Int, seed: Int, upTo last: Int? = nil) -> Double? {
        let values = records.filter { $0.algorithm == algorithm && $0.position == position && $0.seed == seed && $0.step > 0 && (last == nil || $0.step <= last!) }
            .compactMap { $0.metrics[metric] }
        return values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
    }

    /// Whether the path that learned the forget set last unlearns slowest, per algorithm.
    public struct RecencyFinding: Sendable {
        public var algorithm: String
        /// Mean forget score over the window, per position (mean over seeds).
        public var windowMeans: [Int: SeedStatistic]
        /// Seeds in which the last position had the smallest window mean, of the seeds measured.
        public var seedsWhereLastIsSlowest: Int
        public var seedsMeasured: Int
        /// Seeds in which the window means decrease strictly with the position.
        public var seedsMonotone: Int
    }

    public func recency(metric: String = "forget_score", upTo last: Int? = nil) -> [RecencyFinding] {
        guard let lastPosition = positions.last, positions.count > 1 else { return [] }
        return algorithms.map { algorithm in
            var means: [Int: SeedStatistic] = [:]
            for p in positions {
                means[p] = SeedStatistic(seeds.compactMap { windowMean(metric, algorithm: algorithm, position: p, seed: $0, upTo: last) })
            }
            var slowest = 0, monotone = 0, measured = 0
            for seed in seeds {
                let values = positions.map { windowMean(metric, algorithm: algorithm, position: $0, seed: seed, upTo: last) }
                guard values.allSatisfy({ $0 != nil }) else { continue }
                let v = values.map { $0! }
                measured += 1
                if v.last! < v.dropLast().min()! { slowest += 1 }
                if zip(v, v.dropFirst()).allSatisfy({ $0 > $1 }) { monotone += 1 }
            }
            _ = lastPosition
            return RecencyFinding(algorithm: algorithm, windowMeans: means, seedsWhereLastIsSlowest: slowest, seedsMeasured: measured, seedsMonotone: monotone)
        }
    }

    /// Unlearning speed of one algorithm and position: per seed, the step at which `metric` first
    /// reaches `threshold` (linear interpolation between evaluated steps), nil where it never does.
    public func stepsToThreshold(_ metric: String = "forget_score", threshold: Double, algorithm: String, position: Int) -> [Int: Double?] {
        var out: [Int: Double?] = [:]
        for seed in seeds {
            let curve = records.filter { $0.algorithm == algorithm && $0.position == position && $0.seed == seed }
                .compactMap { r in r.metrics[metric].map { (Double(r.step), $0) } }.sorted { $0.0 < $1.0 }
            guard !curve.isEmpty else { continue }
            out[seed] = .some((try? UnlearningSpeed.stepsToThreshold(steps: curve.map(\.0), scores: curve.map(\.1), threshold: threshold)) ?? nil)
        }
        return out
    }

    /// The last record of one unlearned model per seed (algorithm, position).
    public func finalRecords(algorithm: String, position: Int) -> [MetricRecord] {
        let rows = records.filter { $0.algorithm == algorithm && $0.position == position }
        return seeds.compactMap { seed in rows.filter { $0.seed == seed }.max { $0.step < $1.step } }
    }

    /// The retrained model's value of a metric, over seeds.
    public func retrained(_ metric: String) -> SeedStatistic? {
        SeedStatistic(records.filter { $0.algorithm == "retrained" }.compactMap { $0.metrics[metric] })
    }

    /// Mean pairwise divergence matrix over seeds for one algorithm.
    public func meanDivergence(algorithm: String) -> (labels: [String], matrix: [[Double]])? {
        let rows = comparisons.filter { $0.algorithm == algorithm && !$0.divergence.isEmpty }
        guard let first = rows.first else { return nil }
        let n = first.labels.count
        var sum = Array(repeating: Array(repeating: 0.0, count: n), count: n)
        for r in rows where r.labels == first.labels {
            for i in 0..<n { for j in 0..<n { sum[i][j] += r.divergence[i][j] } }
        }
        let count = Double(rows.filter { $0.labels == first.labels }.count)
        return (first.labels, sum.map { $0.map { $0 / count } })
    }

    private func ordered(_ names: [String]) -> [String] {
        var seen = Set<String>(), out: [String] = []
        for n in names where seen.insert(n).inserted { out.append(n) }
        return out
    }
}
