import Foundation
import Testing
import Evaluation

@Suite struct PorterStemmerTests {
    @Test func matchesNLTKOnFixtureVocabulary() throws {
        let cases = try fixture("porter")["cases"] as! [[String]]
        #expect(cases.count > 300)
        let stemmer = PorterStemmer()
        var mismatches = [String]()
        for c in cases where stemmer.stem(c[0]) != c[1] {
            mismatches.append("\(c[0]): got \(stemmer.stem(c[0])), nltk \(c[1])")
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches: \(mismatches.prefix(20))")
    }

    @Test func handPickedRules() {
        let s = PorterStemmer()
        #expect(s.stem("caresses") == "caress")
        #expect(s.stem("flies") == "fli")
        #expect(s.stem("dies") == "die")
        #expect(s.stem("dying") == "die")
        #expect(s.stem("hopping") == "hop")
        #expect(s.stem("generalizations") == "gener")
        #expect(s.stem("happy") == "happi")
        #expect(s.stem("enjoy") == "enjoy")
        #expect(s.stem("Running") == "run")
        #expect(s.stem("is") == "is")
    }
}

@Suite struct RougeTests {
    @Test func matchesRougeScoreWithStemming() throws {
        let cases = try fixture("rouge")["cases"] as! [[String: Any]]
        for c in cases {
            let target = c["target"] as! String, prediction = c["prediction"] as! String
            #expect(Rouge.tokenize(target) == c["target_tokens"] as! [String], "tokens of \(target)")
            let l = Rouge.rougeL(target: target, prediction: prediction)
            let one = Rouge.rouge1(target: target, prediction: prediction)
            let refL = doubles(c["rougeL"]), ref1 = doubles(c["rouge1"])
            #expect(close(l.precision, refL[0]) && close(l.recall, refL[1]) && close(l.fmeasure, refL[2]),
                    "rougeL \(target) / \(prediction): \(l) vs \(refL)")
            #expect(close(one.precision, ref1[0]) && close(one.recall, ref1[1]) && close(one.fmeasure, ref1[2]),
                    "rouge1 \(target) / \(prediction): \(one) vs \(ref1)")
        }
    }

    @Test func handComputedLCS() throws {
        // target: a b c d e (5), prediction: a c e x → LCS 3.
        let s = Rouge.rougeL(target: "a b c d e", prediction: "a c e x")
        #expect(s.recall == 3.0 / 5.0 && s.precision == 3.0 / 4.0)
        #expect(try Rouge.meanRougeLRecall(references: ["a b", "c d"], predictions: ["a", "c d"]) == 0.75)
        #expect(throws: EvaluationError.self) { try Rouge.meanRougeLRecall(references: ["a"], predictions: []) }
        #expect(throws: EvaluationError.self) { try Rouge.meanRougeLRecall(references: [], predictions: []) }
    }
}

@Suite struct KolmogorovSmirnovTests {
    @Test func explicitSamplesMatchScipy() throws {
        let f = try fixture("ks")
        for c in f["cases"] as! [[String: Any]] {
            let r = try KolmogorovSmirnov.twoSample(doubles(c["x"]), doubles(c["y"]))
            #expect(r.method == .exact)
            #expect(close(r.statistic, double(c["statistic"]), rtol: 1e-14), "D \(r.statistic) vs \(double(c["statistic"]))")
            #expect(close(r.pValue, double(c["pvalue"]), rtol: 1e-13), "p \(r.pValue) vs \(double(c["pvalue"])) for n=\((c["x"] as! [Any]).count),\((c["y"] as! [Any]).count)")
        }
    }

    @Test func generatedLargeSamplesMatchScipy() throws {
        let f = try fixture("ks")
        for c in f["generated"] as! [[String: Any]] {
            let xs = doubles(c["x"]), ys = doubles(c["y"])
            let x = lcgSample(seed: UInt64(xs[0]), count: Int(xs[1]), modulus: UInt64(xs[2]), scale: xs[3])
            let y = lcgSample(seed: UInt64(ys[0]), count: Int(ys[1]), modulus: UInt64(ys[2]), scale: ys[3])
            // JSONSerialization may parse a decimal one ulp off, so the heads are compared to 1e-15.
            #expect(zip(x.prefix(3), doubles(c["x_head"])).allSatisfy { close($0, $1, rtol: 1e-15) })
            #expect(zip(y.prefix(3), doubles(c["y_head"])).allSatisfy { close($0, $1, rtol: 1e-15) })
            let r = try KolmogorovSmirnov.twoSample(x, y)
            #expect(r.method == (max(x.count, y.count) > 10_000 ? .asymptotic : .exact))
            #expect(close(r.statistic, double(c["statistic"]), rtol: 1e-12))
            #expect(close(r.pValue, double(c["pvalue"]), rtol: 1e-11), "p \(r.pValue) vs \(double(c["pvalue"])) for n=\(x.count),\(y.count)")
        }
    }

    @Test func oneSampleDistributionMatchesScipyKstwo() throws {
        let f = try fixture("ks")
        for row in f["kstwo_sf"] as! [[Any]] {
            let n = int(row[0]), d = double(row[1]), ref = double(row[2])
            let got = KolmogorovSmirnov.oneSampleTwoSidedSurvival(n: n, d: d)
            #expect(close(got, ref, rtol: 1e-10, atol: 1e-300), "kstwo.sf(\(d), \(n)) = \(ref), got \(got)")
        }
    }

    @Test func handComputedExactCase() throws {
        // Fully separated samples of 3 and 3: D = 1, P = 2 / C(6,3) = 0.1.
        let r = try KolmogorovSmirnov.twoSample([1, 2, 3], [4, 5, 6])
        #expect(r.statistic == 1)
        #expect(close(r.pValue, 0.1, rtol: 1e-14))
        #expect(throws: EvaluationError.self) { try KolmogorovSmirnov.twoSample([], [1]) }
        #expect(throws: EvaluationError.self) { try KolmogorovSmirnov.twoSample([.nan], [1]) }
    }
}
