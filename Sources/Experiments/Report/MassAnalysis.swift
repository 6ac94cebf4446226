import Evaluation
import Foundation

/// The probability-mass outcome of one stage order (paper §4.3): where the mass of U went.
public struct MassOutcome: Equatable, Sendable {
    public var path: [String]
    public var algorithm: String
    /// Prompt-mean sequence log-likelihoods of C, U and R before unlearning and at the last step.
    public var initial: (c: SeedStatistic, u: SeedStatistic, r: SeedStatistic)
    public var final: (c: SeedStatistic, u: SeedStatistic, r: SeedStatistic)
    /// Mean share of U among C, U, R before and after.
    public var initialShareU: SeedStatistic?
    public var finalShareU: SeedStatistic?
    /// Per seed, the documented rule (`MassClassificationRule`) on the prompt means.
    public var depths: [ForgettingDepth]
    public var lastStep: Int

    public static func == (a: MassOutcome, b: MassOutcome) -> Bool {
        a.path == b.path && a.algorithm == b.algorithm && a.depths == b.depths && a.lastStep == b.lastStep
            && [a.initial.c, a.initial.u, a.initial.r, a.final.c, a.final.u, a.final.r] == [b.initial.c, b.initial.u, b.initial.r, b.final.c, b.final.u, b.final.r]
    }
}

extension ExperimentAnalysis {
    /// The distinct stage orders of the unlearned runs (by forget position, then by name).
    /// Several orders can share a forget position, so order-level results are keyed by path.
    public var orders: [[String]] {
        var seen = Set<[String]>()
        let paths = records.filter { $0.algorithm != "retrained" }.map(\.path).filter { seen.insert($0).inserted }
        return paths.sorted { a, b in
            let pa = records.first { $0.path == a }?.position ?? 0, pb = records.first { $0.path == b }?.position ?? 0
            return pa != pb ? pa < pb : a.joined(separator: "/") < b.joined(separator: "/")
        }
    }

    /// `metric` over steps for one stage order, seeds as statistics.
    public func curve(_ metric: String, algorithm: String, path: [String]) -> [(step: Int, value: SeedStatistic)] {
        steps.compactMap { s in
            SeedStatistic(records.filter { $0.algorithm == algorithm && $0.path == path && $0.step == s }.compactMap { $0.metrics[metric] }).map { (s, $0) }
        }
    }

    /// The probability-mass outcome of every order and algorithm that measured C, U and R.
    public func massOutcomes(rule: MassClassificationRule = MassClassificationRule()) -> [MassOutcome] {
        var out: [MassOutcome] = []
        for algorithm in algorithms {
            for path in orders {
                let runs = records.filter { $0.algorithm == algorithm && $0.path == path && $0.metrics["mass_loglik_u"] != nil }
                guard let first = runs.map(\.step).min(), let last = runs.map(\.step).max(), last > first else { continue }
                var depths: [ForgettingDepth] = []
                var ends: [[Double]] = Array(repeating: [], count: 6)
                for seed in seeds {
                    guard let a = runs.first(where: { $0.seed == seed && $0.step == first })?.metrics,
                          let b = runs.first(where: { $0.seed == seed && $0.step == last })?.metrics,
                          let ac = a["mass_loglik_c"], let au = a["mass_loglik_u"], let ar = a["mass_loglik_r"],
                          let bc = b["mass_loglik_c"], let bu = b["mass_loglik_u"], let br = b["mass_loglik_r"] else { continue }
                    for (i, v) in [ac, au, ar, bc, bu, br].enumerated() { ends[i].append(v) }
                    if let c = try? ProbabilityMass.classify(initial: [MassPoint(logC: ac, logU: au, logR: ar)],
                                                              final: [MassPoint(logC: bc, logU: bu, logR: br)], rule: rule) {
                        depths.append(c.depth)
                    }
                }
                let s = ends.map { SeedStatistic($0) }
                guard s.allSatisfy({ $0 != nil }) else { continue }
                let share = { (step: Int) in SeedStatistic(runs.filter { $0.step == step }.compactMap { $0.metrics["mass_share_u"] }) }
                out.append(MassOutcome(path: path, algorithm: algorithm, initial: (s[0]!, s[1]!, s[2]!), final: (s[3]!, s[4]!, s[5]!),
                                       initialShareU: share(first), finalShareU: share(last), depths: depths, lastStep: last))
            }
        }
        return out
    }
}
