import Engine
import Foundation

/// Summary statistics used by reports: means, spreads over seeds, bootstrap intervals.
public enum Statistics {
    /// Arithmetic mean. Throws on an empty set or NaN.
    public static func mean(_ values: [Double], metric: String = "mean") throws -> Double {
        try requireNonEmpty(values, metric, "the value set")
        try requireNoNaN(values, metric, "the value set")
        return values.reduce(0, +) / Double(values.count)
    }

    /// Sample standard deviation (divisor n − 1, numpy `std(ddof=1)`); 0 for a single value.
    public static func sampleStandardDeviation(_ values: [Double], metric: String = "standard deviation") throws -> Double {
        let m = try mean(values, metric: metric)
        guard values.count > 1 else { return 0 }
        let ss = values.reduce(0) { $0 + ($1 - m) * ($1 - m) }
        return (ss / Double(values.count - 1)).squareRoot()
    }

    /// Harmonic mean n / Σ 1/xᵢ, as `scipy.stats.hmean`: 0 when any value is 0; negative values are an error.
    public static func harmonicMean(_ values: [Double], metric: String = "harmonic mean") throws -> Double {
        try requireNonEmpty(values, metric, "the value set")
        try requireNoNaN(values, metric, "the value set")
        if let bad = values.first(where: { $0 < 0 }) {
            throw EvaluationError(metric, "the harmonic mean needs values ≥ 0, found \(bad)")
        }
        if values.contains(0) { return 0 }
        return Double(values.count) / values.reduce(0) { $0 + 1 / $1 }
    }

    /// Ranks 1...n with ties given the average of the ranks they span (`scipy.stats.rankdata(method="average")`).
    /// The values must not be NaN (the public metrics check before ranking).
    public static func averageRanks(_ values: [Double]) -> [Double] {
        let order = values.indices.sorted { values[$0] < values[$1] }
        var ranks = [Double](repeating: 0, count: values.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && values[order[j + 1]] == values[order[i]] { j += 1 }
            let avg = Double(i + j + 2) / 2  // ranks i+1 ... j+1
            for k in i...j { ranks[order[k]] = avg }
            i = j + 1
        }
        return ranks
    }

    /// Quantile with linear interpolation between order statistics (numpy's default `method="linear"`).
    public static func quantile(_ values: [Double], _ q: Double, metric: String = "quantile") throws -> Double {
        try requireNonEmpty(values, metric, "the value set")
        try requireNoNaN(values, metric, "the value set")
        try require(q >= 0 && q <= 1, metric, "quantile level must be in [0, 1], found \(q)")
        let s = values.sorted()
        let pos = q * Double(s.count - 1)
        let lo = Int(pos.rounded(.down))
        let hi = min(lo + 1, s.count - 1)
        let frac = pos - Double(lo)
        return s[lo] + (s[hi] - s[lo]) * frac
    }
}

/// Spread of one metric over repeated runs (seeds): what a report prints as mean ± half-range or ± std.
public struct SeedSummary: Equatable, Sendable, Codable {
    public var count: Int
    public var mean: Double
    /// Sample standard deviation (n − 1); 0 for one seed.
    public var standardDeviation: Double
    public var minimum: Double
    public var maximum: Double
    /// (max − min) / 2: with two or three seeds this is a more honest spread than a standard deviation.
    public var halfRange: Double { (maximum - minimum) / 2 }
    /// Standard error of the mean, std / √n.
    public var standardError: Double { standardDeviation / Double(count).squareRoot() }

    /// Summarises the values of one metric over seeds. Throws on an empty set or NaN.
    public init(_ values: [Double]) throws {
        let m = try Statistics.mean(values, metric: "seed summary")
        count = values.count
        mean = m
        standardDeviation = try Statistics.sampleStandardDeviation(values, metric: "seed summary")
        minimum = values.min()!
        maximum = values.max()!
    }
}

/// A confidence interval from the percentile bootstrap.
public struct ConfidenceInterval: Equatable, Sendable, Codable {
    /// The statistic on the original sample.
    public var estimate: Double
    public var lower: Double
    public var upper: Double
    /// Coverage level, e.g. 0.95.
    public var level: Double
}

public enum Bootstrap {
    /// Percentile bootstrap interval of `statistic` (default: the mean).
    ///
    /// Draws `resamples` samples of the same size with replacement from a generator seeded by `seed`
    /// (same seed → same interval on every machine), evaluates the statistic on each, and returns the
    /// (1 − level)/2 and (1 + level)/2 quantiles (linear interpolation) of those values.
    public static func percentileInterval(
        _ values: [Double], level: Double = 0.95, resamples: Int = 2000, seed: UInt64 = 0,
        statistic: ([Double]) -> Double = { $0.reduce(0, +) / Double($0.count) }
    ) throws -> ConfidenceInterval {
        let metric = "bootstrap confidence interval"
        try requireNonEmpty(values, metric, "the sample")
        try requireNoNaN(values, metric, "the sample")
        try require(level > 0 && level < 1, metric, "level must be in (0, 1), found \(level)")
        try require(resamples >= 1, metric, "resamples must be ≥ 1, found \(resamples)")
        var rng = SeededRandom(seed: seed)
        var stats = [Double]()
        stats.reserveCapacity(resamples)
        var sample = [Double](repeating: 0, count: values.count)
        for _ in 0..<resamples {
            for i in 0..<values.count { sample[i] = values[rng.nextInt(values.count)] }
            stats.append(statistic(sample))
        }
        try requireNoNaN(stats, metric, "the statistic on a resample")
        let alpha = (1 - level) / 2
        return ConfidenceInterval(
            estimate: statistic(values),
            lower: try Statistics.quantile(stats, alpha, metric: metric),
            upper: try Statistics.quantile(stats, 1 - alpha, metric: metric),
            level: level)
    }
}
