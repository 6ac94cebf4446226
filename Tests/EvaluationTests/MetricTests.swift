import Foundation
import Testing
import Evaluation

@Suite struct LogLikelihoodTests {
    @Test func summaries() throws {
        let s = try SequenceLogLikelihood(tokenLogProbs: [-1, -2, -3])
        #expect(s.sum == -6 && s.tokenCount == 3 && s.mean == -2)
        let sum = try LogLikelihoodSummary(tokenLogProbs: [[-1, -2, -3], [-4]])
        #expect(sum.meanSum == -5)
        #expect(sum.meanPerToken == -3)
        #expect(sum.tokenWeightedMean == -2.5)
        #expect(sum.totalTokens == 4 && sum.count == 2)
    }

    @Test func forgetScoreAndFactUtility() throws {
        let before: [[Double]] = [[-1, -1], [-2]], after: [[Double]] = [[-3, -1], [-5]]
        #expect(try UnlearningScores.forgetScore(before: before, after: after) == 2)
        #expect(close(try UnlearningScores.forgetScore(before: before, after: after, averaging: .tokenWeighted), 5.0 / 3.0))
        #expect(try UnlearningScores.forgetScore(before: after, after: before) == -2)
        #expect(try UnlearningScores.factUtility(before: [[-1]], after: [[-1.5]]) == 0.5)
        #expect(try UnlearningScores.factUtility(before: [[-1]], after: [[-0.25]]) == 0.25)
        #expect(try UnlearningScores.factUtility(before: [[-1]], after: [[-4]]) == -2)
    }

    @Test func badInput() {
        #expect(throws: EvaluationError.self) { try UnlearningScores.forgetScore(before: [], after: []) }
        #expect(throws: EvaluationError.self) { try UnlearningScores.forgetScore(before: [[-1]], after: [[-1], [-2]]) }
        #expect(throws: EvaluationError.self) { try UnlearningScores.forgetScore(before: [[-1]], after: [[-1, -2]]) }
        #expect(throws: EvaluationError.self) { try UnlearningScores.forgetScore(before: [[]], after: [[]]) }
        #expect(throws: EvaluationError.self) { try SequenceLogLikelihood(tokenLogProbs: [.nan]) }
        do {
            _ = try UnlearningScores.forgetScore(before: [[-1]], after: [[-1], [-2]])
        } catch let e as EvaluationError {
            #expect(e.metric == "forget score")
            #expect(e.description.contains("1") && e.description.contains("2"))
        } catch { Issue.record("wrong error type") }
    }
}

@Suite struct TOFUTests {
    @Test func handComputed() throws {
        let r = try TOFU.truthRatio(paraphrasedMeanLogLikelihood: -1, perturbedMeanLogLikelihoods: [-2, -4])
        #expect(close(r, exp(-2.0)))
        #expect(close(try TOFU.summarize(truthRatios: [r], as: .forget), exp(-2.0)))
        #expect(close(try TOFU.summarize(truthRatios: [1 / r], as: .forget), exp(-2.0)))
        #expect(close(try TOFU.summarize(truthRatios: [r], as: .oneMinusForget), 1 - exp(-2.0)))
        #expect(close(try TOFU.summarize(truthRatios: [r, 2], as: .retain), (1 - exp(-2.0)) / 2))
        #expect(close(try TOFU.probabilityAgainstPerturbed(correct: [log(0.5)], perturbed: [[log(0.25), log(0.25)]]), 0.5))
        #expect(close(try TOFU.probability(answerMeanLogLikelihoods: [log(0.5), log(0.25)]), 0.375))
        #expect(throws: EvaluationError.self) { try TOFU.truthRatios(paraphrased: [-1], perturbed: [[]]) }
        #expect(throws: EvaluationError.self) { try TOFU.truthRatios(paraphrased: [-1, -2], perturbed: [[-1]]) }
        #expect(throws: EvaluationError.self) { try TOFU.modelUtility([0.5, -0.1]) }
        #expect(try TOFU.modelUtility([0.5, 0]) == 0)
    }

    @Test func matchesTOFUAggregateCode() throws {
        let f = try fixture("tofu")
        let gtLL = doubles(f["avg_gt_loss"]).map { -$0 }
        let paraLL = doubles(f["avg_paraphrased_loss"]).map { -$0 }
        let pertLL = (f["average_perturb_loss"] as! [Any]).map { doubles($0).map { -$0 } }
        let ratios = try TOFU.truthRatios(paraphrased: paraLL, perturbed: pertLL)
        #expect(close(try TOFU.summarize(truthRatios: ratios, as: .forget), double(f["truth_ratio_forget"])))
        #expect(close(try TOFU.summarize(truthRatios: ratios, as: .retain), double(f["truth_ratio_retain"])))
        #expect(close(try TOFU.probability(answerMeanLogLikelihoods: gtLL), double(f["prob_plain"])))
        #expect(close(try TOFU.probabilityAgainstPerturbed(correct: gtLL, perturbed: pertLL), double(f["prob_normalised"])))
        #expect(close(try TOFU.modelUtility(doubles(f["utilities"])), double(f["hmean"])))
        let retrained = try TOFU.truthRatios(
            paraphrased: doubles(f["retrain_paraphrased_loss"]).map { -$0 },
            perturbed: (f["retrain_perturb_loss"] as! [Any]).map { doubles($0).map { -$0 } })
        let fq = try TOFU.forgetQuality(unlearnedTruthRatios: ratios, retrainedTruthRatios: retrained)
        #expect(close(fq.pValue, double(f["forget_quality"]), rtol: 1e-10))
        #expect(close(fq.statistic, double(f["forget_ks_statistic"])))
    }
}

@Suite struct MathAccuracyTests {
    @Test func parsing() {
        func p(_ s: String) -> String? { MathAnswer.parse(s)?.canonical }
        #expect(p("so 8 * 9 = 72\n#### 72") == "72")
        #expect(p("#### 1,000") == "1000")
        #expect(p("####-5") == "-5")
        #expect(p("#### +3.50 dollars") == "3.5")
        #expect(p("#### $12") == "12")
        #expect(p("#### -$12") == "-12")
        #expect(p("#### 72.") == "72")
        #expect(p("#### 007") == "7")
        #expect(p("#### -0.0") == "0")
        #expect(p("#### .5") == "0.5")
        #expect(p("####\n  42 apples") == "42")
        #expect(p("#### 3 then #### 4") == "3")
        #expect(p("The answer is 5") == nil)
        #expect(p("#### ") == nil)
        #expect(p("#### five") == nil)
        #expect(p("#### ,5") == nil)
    }

    @Test func accuracyWithUnparsableSamples() throws {
        let acc = try MathAccuracy(
            samples: [["#### 72", "#### 72.0", "#### 71", "the answer is 72"], ["#### 1000", "####1,000.00"]],
            references: ["Natalia sold 72 clips.\n#### 72", "#### 1,000"])
        #expect(acc.perQuestion == [0.5, 1.0])
        #expect(acc.mean == 0.75)
        #expect(acc.unparsable == 1)
        #expect(acc.totalSamples == 6)
        #expect(throws: EvaluationError.self) { try MathAccuracy(samples: [["#### 1"]], references: ["no marker"]) }
        #expect(throws: EvaluationError.self) { try MathAccuracy(samples: [[]], references: ["#### 1"]) }
        #expect(throws: EvaluationError.self) { try MathAccuracy(samples: [], references: []) }
        #expect(throws: EvaluationError.self) { try MathAccuracy(samples: [["#### 1"]], references: ["#### 1", "#### 2"]) }
    }
}

@Suite struct DistanceTests {
    @Test func meanSquaredDifference() throws {
        #expect(close(try Distance.meanSquaredLogProbDifference([[0, -1], [-2]], [[-1, -1], [0]]), 5.0 / 3.0))
        #expect(throws: EvaluationError.self) { try Distance.meanSquaredLogProbDifference([[0, -1]], [[0]]) }
        #expect(throws: EvaluationError.self) { try Distance.meanSquaredLogProbDifference([], []) }
    }

    @Test func fullDistributionKL() throws {
        let p = [log(0.5), log(0.5), log(0.2), log(0.8)]
        let q = [log(0.25), log(0.75), log(0.2), log(0.8)]
        let expected = (0.5 * log(0.5 / 0.25) + 0.5 * log(0.5 / 0.75)) / 2
        #expect(close(try Distance.klDivergence(p: p, q: q, vocabularySize: 2), expected))
        let both = try Distance.klBothDirections(p: p, q: q, vocabularySize: 2)
        #expect(close(both.qp, (0.25 * log(0.25 / 0.5) + 0.75 * log(0.75 / 0.5)) / 2))
        // Zero-probability entries.
        #expect(close(try Distance.klDivergence(p: [0, -.infinity], q: [log(0.5), log(0.5)], vocabularySize: 2), log(2.0)))
        #expect(try Distance.klDivergence(p: [log(0.5), log(0.5)], q: [0, -.infinity], vocabularySize: 2) == .infinity)
        // Logits instead of log-probabilities, bad shapes.
        #expect(throws: EvaluationError.self) { try Distance.klDivergence(p: [1, 2], q: [1, 2], vocabularySize: 2) }
        #expect(throws: EvaluationError.self) { try Distance.klDivergence(p: [0, 0, 0], q: [0, 0, 0], vocabularySize: 2) }
        #expect(throws: EvaluationError.self) { try Distance.klDivergence(p: [0], q: [0, 0], vocabularySize: 1) }
    }

    @Test func k3IsExactInExpectation() throws {
        // Tokens in exact proportion to s = (1/2, 1/4, 1/4): the k3 mean equals KL(s‖o) exactly.
        let s = [0.5, 0.25, 0.25], o = [0.2, 0.3, 0.5]
        let tokens = [0, 0, 1, 2]
        let est = try Distance.k3(samplerLogProbs: tokens.map { log(s[$0]) }, otherLogProbs: tokens.map { log(o[$0]) })
        let kl = (0..<3).reduce(0.0) { $0 + s[$1] * log(s[$1] / o[$1]) }
        #expect(close(est, kl, rtol: 1e-12))
        #expect(close(try Distance.k3(samplerLogProbs: [log(0.5)], otherLogProbs: [log(0.25)]), log(2.0) - 0.5))
        #expect(throws: EvaluationError.self) { try Distance.k3(samplerLogProbs: [], otherLogProbs: []) }
    }

    @Test func gaps() throws {
        let g = try Distance.gaps(unlearned: ["forget": 3, "utility": 0.5], retrained: ["forget": 1, "utility": 0.75])
        #expect(g == ["forget": 2, "utility": -0.25])
        #expect(throws: EvaluationError.self) { try Distance.gaps(unlearned: ["a": 1], retrained: ["b": 1]) }
    }
}

@Suite struct PathDivergenceTests {
    @Test func pairwiseJeffreysMatchesAnalyticValue() throws {
        let p = [0.5, 0.5], q = [0.75, 0.25]
        let fromP = [0, 1], fromQ = [0, 0, 0, 1]
        func scored(_ toks: [Int], _ m: [Double]) -> [[Double]] { toks.map { [log(m[$0])] } }
        let lp: [[[[Double]]]] = [[scored(fromP, p), scored(fromP, q)], [scored(fromQ, p), scored(fromQ, q)]]
        let J = try PathDivergence.pairwiseJeffreys(logProbs: lp)
        let klPQ = 0.5 * log(0.5 / 0.75) + 0.5 * log(0.5 / 0.25)
        let klQP = 0.75 * log(0.75 / 0.5) + 0.25 * log(0.25 / 0.5)
        #expect(J[0][0] == 0 && J[1][1] == 0)
        #expect(J[0][1] == J[1][0])
        #expect(close(J[0][1], klPQ + klQP, rtol: 1e-12))
        let j = try PathDivergence.jeffreys(fromP: .init(sampler: scored(fromP, p), other: scored(fromP, q)),
                                            fromQ: .init(sampler: scored(fromQ, q), other: scored(fromQ, p)))
        #expect(close(j.pq, klPQ, rtol: 1e-12) && close(j.qp, klQP, rtol: 1e-12))
    }

    @Test func levels() throws {
        let s: [[Double]] = [[-0.5, -1], [-2, -0.1]], o: [[Double]] = [[-1, -0.7], [-1, -0.3]]
        let samples = PathDivergence.ScoredSamples(sampler: s, other: o)
        let tok = try PathDivergence.kl(samples, level: .token)
        let seq = try PathDivergence.kl(samples, level: .sequence)
        #expect(close(seq, 2 * tok))
        let ratio = try PathDivergence.kl(samples, level: .sequenceRatio)
        func k3(_ ls: Double, _ lo: Double) -> Double { (ls - lo) + (exp(lo - ls) - 1) }
        let expected = (k3(-1.5, -1.7) + k3(-2.1, -1.3)) / 2
        #expect(close(ratio, expected))
        #expect(throws: EvaluationError.self) { try PathDivergence.kl(.init(sampler: [[-1]], other: [[-1, -2]])) }
        #expect(throws: EvaluationError.self) { try PathDivergence.pairwiseJeffreys(logProbs: [[s, o]]) }
    }
}

@Suite struct ProbabilityMassTests {
    @Test func classification() throws {
        let initial = [MassPoint(logC: -2, logU: -2, logR: -3), MassPoint(logC: -2, logU: -2, logR: -3)]
        let superficial = [MassPoint(logC: -1.5, logU: -8, logR: -3), MassPoint(logC: -1.5, logU: -8, logR: -3)]
        let deep = [MassPoint(logC: -6, logU: -8, logR: -3), MassPoint(logC: -2, logU: -9, logR: -3)]
        let none = [MassPoint(logC: -2, logU: -2.5, logR: -3), MassPoint(logC: -2, logU: -2.5, logR: -3)]
        #expect(try ProbabilityMass.classify(initial: initial, final: superficial).depth == .superficial)
        let d = try ProbabilityMass.classify(initial: initial, final: deep)
        #expect(d.depth == .deep)
        #expect(d.deltaU == -6.5 && d.deltaC == -2 && d.deltaR == 0 && d.finalCMinusR == -1)
        #expect(d.promptCounts == [.deep: 1, .superficial: 1, .none: 0])
        #expect(try ProbabilityMass.classify(initial: initial, final: none).depth == .none)
        #expect(try ProbabilityMass.classify(initial: initial, final: none, rule: .init(minimumDrop: 0.4)).depth == .superficial)
        #expect(throws: EvaluationError.self) { try ProbabilityMass.classify(initial: initial, final: []) }
        #expect(throws: EvaluationError.self) { try ProbabilityMass.classify(initial: [], final: []) }
    }

    @Test func shares() {
        let s = MassPoint(logC: -1, logU: -1, logR: -1).shares
        #expect(close(s.c, 1.0 / 3) && close(s.u, 1.0 / 3) && close(s.r, 1.0 / 3))
        let t = MassPoint(logC: log(0.2) - 900, logU: log(0.3) - 900, logR: log(0.5) - 900).shares
        #expect(close(t.c, 0.2, rtol: 1e-9) && close(t.u, 0.3, rtol: 1e-9) && close(t.r, 0.5, rtol: 1e-9))
    }
}

@Suite struct UnlearningSpeedTests {
    @Test func crossing() throws {
        #expect(try UnlearningSpeed.stepsToThreshold(scores: [0, 1, 3, 5], threshold: 2) == 1.5)
        #expect(try UnlearningSpeed.stepsToThreshold(scores: [0, 1, 3, 5], threshold: 2, interpolate: false) == 2)
        #expect(try UnlearningSpeed.stepsToThreshold(scores: [0, 1, 3, 5], threshold: 10) == nil)
        #expect(try UnlearningSpeed.stepsToThreshold(scores: [0, 1, 3, 5], threshold: -1) == 0)
        #expect(try UnlearningSpeed.stepsToThreshold(steps: [0, 10, 20], scores: [0, 2, 4], threshold: 3) == 15)
        #expect(throws: EvaluationError.self) { try UnlearningSpeed.stepsToThreshold(steps: [0, 0], scores: [1, 2], threshold: 1) }
        #expect(throws: EvaluationError.self) { try UnlearningSpeed.stepsToThreshold(scores: [], threshold: 1) }
    }
}

@Suite struct MembershipInferenceTests {
    @Test func minKAndAUCByHand() throws {
        #expect(try MembershipInference.minKPercentLogProb([-1, -5, -3, -2, -4], k: 0.4) == -4.5)
        #expect(throws: EvaluationError.self) { try MembershipInference.minKPercentLogProb([-1, -2], k: 0.1) }
        #expect(try MembershipInference.rocAUC(members: [3, 2], nonMembers: [1, 2]) == 0.875)
        #expect(close(try MembershipInference.privacyLeakage(unlearnedAUC: 0.7, retrainedAUC: 0.5), 0.4))
        #expect(throws: EvaluationError.self) { try MembershipInference.rocAUC(members: [], nonMembers: [1]) }
        #expect(throws: EvaluationError.self) { try MembershipInference.privacyLeakage(unlearnedAUC: 0.7, retrainedAUC: 0) }
    }

    @Test func minKMatchesMUSE() throws {
        for row in try fixture("tofu")["min_k"] as! [[Any]] {
            let lp = doubles(row[0]), k = double(row[1]), museScore = double(row[2])
            #expect(close(-(try MembershipInference.minKPercentLogProb(lp, k: k)), museScore, rtol: 1e-13))
        }
    }

    @Test func aucMatchesRankFormula() throws {
        for c in try fixture("auc")["cases"] as! [[String: Any]] {
            let got = try MembershipInference.rocAUC(members: doubles(c["positive"]), nonMembers: doubles(c["negative"]))
            #expect(close(got, double(c["auc"]), rtol: 1e-13), "\(got) vs \(double(c["auc"]))")
        }
    }
}

@Suite struct StatisticsTests {
    @Test func basics() throws {
        let s = try SeedSummary([1, 2, 3, 4])
        #expect(s.mean == 2.5 && s.halfRange == 1.5 && s.count == 4)
        #expect(close(s.standardDeviation, (5.0 / 3.0).squareRoot()))
        #expect(try SeedSummary([7]).standardDeviation == 0)
        #expect(close(try Statistics.harmonicMean([1, 2, 4]), 12.0 / 7.0))
        #expect(Statistics.averageRanks([10, 20, 20, 30, 5]) == [2, 3.5, 3.5, 5, 1])
        #expect(try Statistics.quantile([4, 1, 3, 2], 0.5) == 2.5)
        #expect(throws: EvaluationError.self) { try SeedSummary([]) }
        #expect(throws: EvaluationError.self) { try Statistics.mean([1, .nan]) }
    }

    @Test func bootstrap() throws {
        let values = (0..<50).map { Double($0 % 7) + 0.1 * Double($0 % 3) }
        let a = try Bootstrap.percentileInterval(values, seed: 1)
        let b = try Bootstrap.percentileInterval(values, seed: 1)
        let c = try Bootstrap.percentileInterval(values, seed: 2)
        #expect(a == b)
        #expect(a != c)
        #expect(a.lower < a.estimate && a.estimate < a.upper)
        let m = values.reduce(0, +) / 50
        #expect(a.estimate == m)
        // The interval of the mean is about ±1.96·sd/√n wide.
        let se = try Statistics.sampleStandardDeviation(values) / 50.0.squareRoot()
        #expect(abs((a.upper - a.lower) / (2 * 1.96 * se) - 1) < 0.2)
        let constant = try Bootstrap.percentileInterval([2, 2, 2], resamples: 50)
        #expect(constant.lower == 2 && constant.upper == 2)
        #expect(throws: EvaluationError.self) { try Bootstrap.percentileInterval([], resamples: 10) }
        #expect(throws: EvaluationError.self) { try Bootstrap.percentileInterval([1], level: 1.5) }
    }
}
