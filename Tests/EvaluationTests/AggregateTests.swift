import Foundation
import Testing
import Evaluation

@Suite struct AggregateTests {
    @Test func tofuSplitsAndSummary() throws {
        let q1 = TOFU.Question(answer: log(0.5), paraphrased: -1, perturbed: [-2, -4],
                               generated: "Jaime was born in Chile", reference: "Jaime Vasquez was born in Santiago, Chile")
        let q2 = TOFU.Question(answer: log(0.25), paraphrased: -3, perturbed: [-2, -2],
                               generated: "", reference: "She writes novels")
        let forget = try TOFU.evaluate([q1, q2], split: .forget)
        #expect(close(forget.probability, 0.375))
        // ROUGE-L recall: "jaime was born in chile" vs 7 reference tokens → LCS 5 → 5/7; empty → 0.
        #expect(close(forget.rougeLRecall, (5.0 / 7.0) / 2))
        #expect(close(forget.truthRatios[0], exp(-2.0)) && close(forget.truthRatios[1], exp(1.0)))
        #expect(close(forget.truthRatio, (exp(-2.0) + exp(-1.0)) / 2))
        let retain = try TOFU.evaluate([q1, q2], split: .retain)
        #expect(close(retain.truthRatio, (1 - exp(-2.0)) / 2))
        let authors = try TOFU.evaluate([q1, q2], split: .realAuthors)
        let expectedProb = (0.5 / (0.5 + exp(-2.0) + exp(-4.0)) + 0.25 / (0.25 + 2 * exp(-2.0))) / 2
        #expect(close(authors.probability, expectedProb))
        let summary = try TOFU.summarize(retain: retain, realAuthors: authors, worldFacts: authors, forget: forget,
                                         retrainedForgetTruthRatios: forget.truthRatios)
        #expect(summary.forgetQuality == 1 && summary.forgetKSStatistic == 0)
        let parts = [retain, authors, authors].flatMap { [$0.probability, $0.rougeLRecall, $0.truthRatio] }
        #expect(close(summary.modelUtility, Double(parts.count) / parts.reduce(0) { $0 + 1 / $1 }))
        #expect(throws: EvaluationError.self) { try TOFU.evaluate([], split: .retain) }
    }

    @Test func mathUtilityAndMassCurve() throws {
        let before = try MathAccuracy(samples: [["#### 1", "#### 1"], ["#### 2", "#### 3"]], references: ["#### 1", "#### 2"])
        let after = try MathAccuracy(samples: [["#### 1", "#### 0"], ["x", "#### 3"]], references: ["#### 1", "#### 2"])
        #expect(try MathAccuracy.change(before: before, after: after) == 0.25 - 0.75)
        let curve = try ProbabilityMass.curve([
            [MassPoint(logC: -1, logU: -1, logR: -1), MassPoint(logC: -3, logU: -1, logR: -1)],
            [MassPoint(logC: -1, logU: -5, logR: -1), MassPoint(logC: -3, logU: -7, logR: -1)],
        ])
        #expect(curve.count == 2)
        #expect(curve[0].meanLogC == -2 && curve[1].meanLogU == -6 && curve[1].meanLogR == -1)
        #expect(close(curve[0].shareC + curve[0].shareU + curve[0].shareR, 1))
        #expect(throws: EvaluationError.self) { try ProbabilityMass.curve([[MassPoint(logC: -1, logU: -1, logR: -1)], []]) }
        #expect(KolmogorovSmirnov.oneSampleTwoSidedSurvival(n: 0, d: 0.5).isNaN)
    }
}

@Suite struct CodableTests {
    @Test func resultsRoundTripThroughJSON() throws {
        let initial = [MassPoint(logC: -2, logU: -2, logR: -3)]
        let c = try ProbabilityMass.classify(initial: initial, final: [MassPoint(logC: -6, logU: -8, logR: -3)])
        let back = try JSONDecoder().decode(MassClassification.self, from: JSONEncoder().encode(c))
        #expect(back == c)
        let s = try SeedSummary([1, 2, 4])
        #expect(try JSONDecoder().decode(SeedSummary.self, from: JSONEncoder().encode(s)) == s)
        let ks = try KolmogorovSmirnov.twoSample([1, 2], [3, 4, 5])
        #expect(try JSONDecoder().decode(KolmogorovSmirnov.Result.self, from: JSONEncoder().encode(ks)) == ks)
    }
}
