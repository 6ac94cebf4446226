import Foundation
import Testing
@testable import Experiments

/// The evaluation section's privacy/TOFU/speed settings, the retrain gaps and the report tables.
@Suite struct EvaluationWiringTests {
    static let base = """
    name: wiring
    model: {preset: pilot}
    tokenizer: {train: {dataset: corpus, vocab_size: 300}}
    datasets:
      corpus: {generator: pretrain, size: 10}
      facts: {generator: entities, size: 14, test_size: 7}
      unsafe: {generator: safety, size: 8, test_size: 4}
    pretraining: {data: corpus}
    stages:
      - {name: facts, data: facts}
      - {name: safety, data: unsafe}
    forget: safety
    unlearning: {steps: 4, algorithms: [ga]}
    """

    @Test func settingsParseWithDefaults() throws {
        let off = try ExperimentSpec.parse(yaml: Self.base + "\nevaluation: {facts: facts}\n")
        #expect(off.evaluation.mia == nil && off.evaluation.tofu == nil && off.evaluation.speedThreshold == nil)
        #expect(off.evaluation.resolvedSpeedThreshold == 1.0)
        let on = try ExperimentSpec.parse(yaml: Self.base + """

        evaluation:
          facts: facts
          speed_threshold: 0.5
          mia: {holdout: unsafe.test}
          tofu: {}
        """)
        #expect(on.evaluation.mia == MIASpec(holdout: "unsafe.test", k: 0.2, count: 32))
        #expect(on.evaluation.tofu == TOFUSpec(data: "facts", count: 32, maxNewTokens: 24))
        #expect(on.evaluation.resolvedSpeedThreshold == 0.5)
    }

    @Test func badSettingsNameTheirKeys() {
        func problems(_ evaluation: String) -> String {
            do { _ = try ExperimentSpec.parse(yaml: Self.base + "\n" + evaluation + "\n"); return "no error" } catch { return "\(error)" }
        }
        let parts = problems("evaluation:\n  mia: {holdout: unsafe.test, k: 1.5, count: 0}\n  tofu: {data: facts, max_new_tokens: -1}\n  speed_threshold: fast")
        for needle in ["evaluation.mia.k", "evaluation.mia.count", "evaluation.tofu.max_new_tokens", "evaluation.speed_threshold"] {
            #expect(parts.contains(needle), "missing \(needle) in \(parts)")
        }
        let refs = problems("evaluation:\n  mia: {holdout: nowhere}\n  tofu: {data: unsafe}")
        for needle in ["evaluation.mia.holdout", "nowhere", "evaluation.tofu.data", "entity QA"] {
            #expect(refs.contains(needle), "missing \(needle) in \(refs)")
        }
        // No facts and no tofu.data: nothing to evaluate TOFU on.
        #expect(problems("evaluation: {tofu: {count: 3}}").contains("evaluation.tofu.data"))
    }

    @Test func speedThresholdChangesNoUnitHash() throws {
        let spec = try ExperimentSpec.parse(yaml: Self.base + "\nevaluation: {facts: facts}\n")
        var edited = spec
        edited.evaluation.speedThreshold = 3
        #expect(ExperimentPlan(spec: spec).units.map(\.hash) == ExperimentPlan(spec: edited).units.map(\.hash))
        edited.evaluation.mia = MIASpec(holdout: "unsafe.test", k: 0.2, count: 4)
        let changed = zip(ExperimentPlan(spec: spec).units, ExperimentPlan(spec: edited).units).filter { $0.hash != $1.hash }.map(\.0.kind)
        #expect(Set(changed) == [.unlearn, .evaluateRetrained, .compare])
    }

    @Test func retrainGapsUseTheSameBaseline() {
        let baseline = ["refusal_loglik": -1.0, "facts_loglik": -0.5, "math_accuracy": 0.5]
        let unlearned = ["refusal_loglik": -3.0, "forget_score": 2.0, "facts_loglik": -0.7, "fact_utility": 0.8,
                         "math_accuracy": 0.25, "math_accuracy_change": -0.25, "mia_auc": 0.7, "only_unlearned": 1.0]
        let retrained = ["refusal_loglik": -2.5, "facts_loglik": -0.9, "math_accuracy": 0.75, "mia_auc": 0.5]
        let g = PipelineWorker.retrainGaps(unlearned: unlearned, baseline: baseline, retrained: retrained)
        // Retrained: forget score −1 − (−2.5) = 1.5, fact utility 1 − 0.4 = 0.6, Δ accuracy +0.25.
        let expected = ["gap_refusal_loglik": -0.5, "gap_forget_score": 0.5, "gap_facts_loglik": 0.2, "gap_fact_utility": 0.2,
                        "gap_math_accuracy": -0.5, "gap_math_accuracy_change": -0.5, "gap_mia_auc": 0.2]
        #expect(Set(g.keys) == Set(expected.keys))
        for (k, v) in expected { #expect(abs(g[k]! - v) < 1e-12, "\(k): \(g[k]!) vs \(v)") }
    }

    @Test func reportHasSpeedPrivacyAndGapTables() {
        var records: [MetricRecord] = []
        // Seed 1 reaches τ = 1 at step 2 (p=1) and step 3 (p=2, interpolated between 2 and 4); p=3 never.
        let curves: [Int: [Double]] = [1: [0, 0.5, 1, 1.5, 2], 2: [0, 0.2, 0.6, 1.2, 1.4], 3: [0, 0.1, 0.2, 0.3, 0.4]]
        for (p, curve) in curves {
            for (step, score) in curve.enumerated() where step != 3 {
                var m = ["forget_score": score]
                if step == 4 { m["mia_auc"] = 0.5 + 0.1 * Double(p); m["tofu_truth_ratio"] = 0.25 }
                records.append(MetricRecord(seed: 1, path: [], position: p, algorithm: "ga", step: step, metrics: m))
            }
        }
        records.append(MetricRecord(seed: 1, path: [], position: nil, algorithm: "retrained", step: 0, metrics: ["mia_auc": 0.5, "tofu_truth_ratio": 0.3]))
        let comparison = ComparisonRecord(seed: 1, algorithm: "ga", labels: ["p=1", "p=2", "p=3"], divergence: [],
                                          toRetrained: (1...3).map { ["kl_symmetric": 0.1, "privacy_leakage": 0.2 * Double($0), "gap_mia_auc": 0.1 * Double($0)] })
        let md = MarkdownReport(title: "t", analysis: ExperimentAnalysis(records: records, comparisons: [comparison]), speedThreshold: 1).render()
        #expect(md.contains("## Unlearning speed: steps to forget score ≥ 1"))
        #expect(md.contains("| p=1 | 2.0 |"))
        #expect(md.contains("| p=2 | 3.0 |"))  // evaluated steps 0, 1, 2, 4: 2 + (1 − 0.6) / (1.4 − 0.6) · 2
        #expect(md.contains("| p=3 | not reached |"))
        #expect(md.contains("## Membership inference and TOFU after 4 unlearning steps: ga"))
        #expect(md.contains("| p=2 | 0.700 | 0.400 | 0.250 |"))
        #expect(md.contains("| retrained | 0.500 | — | 0.300 |"))
        #expect(md.contains("## Gap to the retrained model after unlearning: ga"))
        #expect(md.contains("| mia_auc | 0.100 | 0.200 | 0.300 |"))
        // The distance table keeps only distances.
        #expect(md.contains("| path | kl_symmetric |"))
        let html = HTMLReport(title: "t", analysis: ExperimentAnalysis(records: records, comparisons: [comparison]), speedThreshold: 1).render()
        #expect(html.contains("<td>p=3</td><td>not reached</td>"))
    }
}
