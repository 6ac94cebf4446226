import Engine
import Foundation
import Models
import Testing
import Evaluation

private func tiny(seed: UInt64, vocab: Int = 40) throws -> CausalLM {
    let config = ModelConfig(vocabSize: vocab, hiddenSize: 16, intermediateSize: 32, numHiddenLayers: 2,
                             numAttentionHeads: 2, numKeyValueHeads: 1, eosTokenIds: [1], initializerRange: 0.4)
    return try CausalLM(config: config, seed: seed)
}

/// Log-probabilities of the response tokens, one unbatched sequence at a time from `model.logits`.
private func handLogProbs(_ model: CausalLM, _ prompt: [Int32], _ response: [Int32]) -> [Double] {
    let ids = prompt + response, v = model.config.vocabSize
    let logits = Autograd.withNoGrad { model.logits(ids, batch: 1, length: ids.count).toArray() }
    let first = max(prompt.count, 1)
    return (first..<ids.count).map { t in
        let row = logits[((t - 1) * v)..<(t * v)].map(Double.init)
        let m = row.max()!
        return row[Int(ids[t])] - (m + log(row.reduce(0) { $0 + exp($1 - m) }))
    }
}

private func handMean(_ model: CausalLM, _ prompt: [Int32], _ response: [Int32]) -> Double {
    let lp = handLogProbs(model, prompt, response)
    return lp.reduce(0, +) / Double(lp.count)
}

private func near(_ a: Double, _ b: Double, _ tol: Double = 1e-4) -> Bool { abs(a - b) <= tol * max(1, abs(a), abs(b)) }

/// Token ids shown as words, so ROUGE can compare generated and reference texts.
private let words: ([Int]) -> String = { ids in ids.map { "w\($0)" }.joined(separator: " ") }

private func items() -> [ModelMetrics.TOFUItem] {
    [ModelMetrics.TOFUItem(prompt: [2, 3, 4], answer: [5, 6, 7], paraphrased: [8, 9], perturbed: [[10, 11], [12, 13, 14]], reference: "w5 w6 w7"),
     ModelMetrics.TOFUItem(prompt: [15], answer: [16, 17], paraphrased: nil, perturbed: [[18], [19, 20], [21]], reference: "w16 w17"),
     ModelMetrics.TOFUItem(prompt: [22, 23], answer: [24], paraphrased: [25, 26, 27, 28], perturbed: [[29, 30]], reference: "w24 w9")]
}

@Suite struct ModelTOFUTests {
    @Test func scoresAndTruthRatiosMatchHandComputedLogLikelihoods() throws {
        let model = try tiny(seed: 11)
        let qs = items()
        for batchSize in [1, 4, 32] {
            let s = try ModelMetrics.tofuScores(model, items: qs, batchSize: batchSize)
            for (i, q) in qs.enumerated() {
                let a = handMean(model, q.prompt, q.answer)
                let p = q.paraphrased.map { handMean(model, q.prompt, $0) } ?? a
                let pert = q.perturbed.map { handMean(model, q.prompt, $0) }
                #expect(near(s.answer[i], a) && near(s.paraphrased[i], p))
                #expect(s.perturbed[i].count == pert.count && zip(s.perturbed[i], pert).allSatisfy { near($0, $1) })
                let r = exp(pert.reduce(0, +) / Double(pert.count) - p)
                #expect(near(try s.truthRatios()[i], r))
            }
        }
        #expect(try ModelMetrics.truthRatios(model, items: qs) == ModelMetrics.tofuScores(model, items: qs).truthRatios())
    }

    @Test func splitNumbersFollowTOFUsDefinitions() throws {
        let model = try tiny(seed: 12)
        let qs = items()
        let greedy = try ModelScoring.sample(model, prompts: qs.map(\.prompt), length: 3, seed: 0, eosTokenIds: [], temperature: 0)
        // References that are the greedy answers themselves (ROUGE-L recall 1) and ones sharing nothing (0).
        var same = qs, none = qs
        for i in qs.indices { same[i].reference = words(greedy[i].map(Int.init)); none[i].reference = "zzz" }
        let answers = qs.map { handMean(model, $0.prompt, $0.answer) }
        let paras = qs.map { q in q.paraphrased.map { handMean(model, q.prompt, $0) } ?? handMean(model, q.prompt, q.answer) }
        let perts = qs.map { q in q.perturbed.map { handMean(model, q.prompt, $0) } }
        let ratios = zip(paras, perts).map { exp($1.reduce(0, +) / Double($1.count) - $0) }

        let forget = try ModelMetrics.tofu(model, items: same, split: .forget, maxNewTokens: 3, eosTokenIds: [], decode: words)
        #expect(near(forget.probability, answers.map(exp).reduce(0, +) / 3))
        #expect(near(forget.truthRatio, ratios.map { min($0, 1 / $0) }.reduce(0, +) / 3))
        #expect(forget.rougeLRecall == 1)
        let retain = try ModelMetrics.tofu(model, items: none, split: .retain, maxNewTokens: 3, eosTokenIds: [], decode: words)
        #expect(near(retain.truthRatio, ratios.map { max(0, 1 - $0) }.reduce(0, +) / 3))
        #expect(retain.rougeLRecall == 0)
        let facts = try ModelMetrics.tofu(model, items: same, split: .worldFacts, maxNewTokens: 3, eosTokenIds: [], decode: words)
        let relative = zip(answers, perts).map { a, p in exp(a) / (exp(a) + p.map(exp).reduce(0, +)) }
        #expect(near(facts.probability, relative.reduce(0, +) / 3))
    }

    @Test func reportGivesModelUtilityAndForgetQuality() throws {
        let model = try tiny(seed: 13), other = try tiny(seed: 14)
        let qs = items()
        let alone = try ModelMetrics.tofuReport(model, splits: [(.forget, qs)], maxNewTokens: 2, eosTokenIds: [1], decode: words)
        #expect(alone.forgetQuality == nil && alone.modelUtility == nil)
        let same = try ModelMetrics.tofuReport(model, splits: [(.forget, qs), (.retain, qs)], retrained: model.copy(), maxNewTokens: 2,
                                               eosTokenIds: [1], decode: words)
        #expect(same.forgetQuality == 1 && same.forgetKSStatistic == 0)
        let retain = same.splits["retain"]!
        #expect(near(same.modelUtility!, try Statistics.harmonicMean([retain.probability, retain.rougeLRecall, retain.truthRatio])))
        let r = try ModelMetrics.tofuReport(model, splits: [(.forget, qs)], retrained: other, maxNewTokens: 2, eosTokenIds: [1], decode: words)
        let ks = try KolmogorovSmirnov.twoSample(try ModelMetrics.truthRatios(model, items: qs), try ModelMetrics.truthRatios(other, items: qs))
        #expect(r.forgetQuality == ks.pValue && r.forgetKSStatistic == ks.statistic)
        #expect(near(r.retrainedForgetTruthRatio!, try TOFU.summarize(truthRatios: ModelMetrics.truthRatios(other, items: qs), as: .forget)))
    }

    @Test func badInputsAreClearErrors() throws {
        let model = try tiny(seed: 15)
        #expect(throws: EvaluationError.self) { try ModelMetrics.tofuScores(model, items: []) }
        var q = items()
        q[1].perturbed = []
        do { _ = try ModelMetrics.tofuScores(model, items: q); Issue.record("no error") } catch let e as EvaluationError {
            #expect(e.problem.contains("question 1") && e.problem.contains("perturbed"))
        }
        do {
            _ = try ModelMetrics.tofuReport(model, splits: [(.forget, items())], retrained: try tiny(seed: 1, vocab: 41), maxNewTokens: 2,
                                            eosTokenIds: [], decode: words)
            Issue.record("no error")
        } catch let e as EvaluationError { #expect(e.problem.contains("tokenizer")) }
        #expect(throws: EvaluationError.self) {
            try ModelMetrics.tofuReport(model, splits: [(.retain, items()), (.retain, items())], maxNewTokens: 2, eosTokenIds: [], decode: words)
        }
    }
}

@Suite struct ModelMembershipTests {
    let members = [ScoredPair(prompt: [2, 3], response: [4, 5, 6, 7, 8]), ScoredPair(prompt: [9], response: [10, 11, 12, 13, 14, 15]),
                   ScoredPair(prompt: [], response: [16, 17, 18, 19, 20, 21])]
    let holdout = [ScoredPair(prompt: [22], response: [23, 24, 25, 26, 27]), ScoredPair(prompt: [28, 29], response: [30, 31, 32, 33, 34, 35, 36])]

    @Test func aucAndLeakageFromHandComputedMinK() throws {
        let model = try tiny(seed: 21), other = try tiny(seed: 22)
        func hand(_ m: CausalLM, _ p: ScoredPair, k: Double) -> Double {
            let lp = handLogProbs(m, p.prompt, p.response).sorted()
            let n = Int(Double(lp.count) * k)
            return lp.prefix(n).reduce(0, +) / Double(n)
        }
        for k in [0.2, 0.5, 1.0] {
            let r = try ModelMetrics.membership(model, members: members, nonMembers: holdout, k: k, batchSize: 2)
            let m = members.map { hand(model, $0, k: k) }, n = holdout.map { hand(model, $0, k: k) }
            #expect(zip(r.memberScores, m).allSatisfy { near($0, $1) } && zip(r.nonMemberScores, n).allSatisfy { near($0, $1) })
            // AUC by counting pairs: P(member > non-member) + ½ P(tie).
            var wins = 0.0
            for a in m { for b in n { wins += a > b ? 1 : (a == b ? 0.5 : 0) } }
            #expect(near(r.auc, wins / Double(m.count * n.count), 1e-12))
        }
        let same = try ModelMetrics.privacyLeakage(model, retrained: model.copy(), members: members, nonMembers: holdout)
        #expect(same.leakage == 0 && same.unlearned.auc == same.retrained.auc)
        let diff = try ModelMetrics.privacyLeakage(model, retrained: other, members: members, nonMembers: holdout)
        #expect(near(diff.leakage, (diff.unlearned.auc - diff.retrained.auc) / diff.retrained.auc, 1e-12))
    }

    @Test func badInputsAreClearErrors() throws {
        let model = try tiny(seed: 23)
        #expect(throws: EvaluationError.self) { try ModelMetrics.membership(model, members: [], nonMembers: holdout) }
        #expect(throws: EvaluationError.self) { try ModelMetrics.membership(model, members: members, nonMembers: []) }
        #expect(throws: EvaluationError.self) { try ModelMetrics.membership(model, members: members, nonMembers: holdout, k: 0) }
        // 4 scored tokens at k = 0.2: ⌊0.8⌋ = 0 tokens; the error names the holdout pair.
        do {
            _ = try ModelMetrics.membership(model, members: members, nonMembers: [holdout[0], ScoredPair(prompt: [2], response: [3, 4, 5, 6])], k: 0.2)
            Issue.record("no error")
        } catch let e as EvaluationError { #expect(e.problem.contains("holdout (non-member) pair 1") && e.problem.contains("too short")) }
        do {
            _ = try ModelMetrics.privacyLeakage(model, retrained: try tiny(seed: 1, vocab: 41), members: members, nonMembers: holdout)
            Issue.record("no error")
        } catch let e as EvaluationError { #expect(e.problem.contains("40") && e.problem.contains("41")) }
    }
}

@Suite struct TOFUSplitsFixtureTests {
    /// Four splits reduced by TOFU's aggregate code, rouge-score and scipy's ks_2samp.
    @Test func splitsUtilityAndForgetQualityMatchTOFUsCode() throws {
        let f = try fixture("tofu_splits")
        func questions(_ d: [String: Any]) -> [TOFU.Question] {
            let gt = doubles(d["avg_gt_loss"]), para = doubles(d["avg_paraphrased_loss"])
            let pert = (d["average_perturb_loss"] as! [Any]).map(doubles)
            let gen = d["generated"] as! [String], ref = d["reference"] as! [String]
            return gt.indices.map { TOFU.Question(answer: -gt[$0], paraphrased: -para[$0], perturbed: pert[$0].map { -$0 }, generated: gen[$0], reference: ref[$0]) }
        }
        let splits = f["splits"] as! [String: [String: Any]], expected = f["result"] as! [String: [String: Any]]
        var results: [String: TOFU.SplitResult] = [:]
        for (name, split) in [("forget", TOFU.Split.forget), ("retain", .retain), ("real_authors", .realAuthors), ("world_facts", .worldFacts)] {
            // Real authors and world facts: TOFU's paraphrase is the answer itself, which the fixture's
            // paraphrased losses stand in for; the formulas are the same.
            let r = try TOFU.evaluate(questions(splits[name]!), split: split)
            let e = expected[name]!
            #expect(close(r.probability, double(e["probability"]), rtol: 1e-12), "\(name) probability")
            #expect(close(r.rougeLRecall, double(e["rouge"]), rtol: 1e-12), "\(name) ROUGE-L \(r.rougeLRecall) vs \(double(e["rouge"]))")
            #expect(close(r.truthRatio, double(e["truth_ratio"]), rtol: 1e-12), "\(name) truth ratio")
            results[name] = r
        }
        let gold = try TOFU.evaluate(questions(f["retrained_forget"] as! [String: Any]), split: .forget)
        let s = try TOFU.summarize(retain: results["retain"]!, realAuthors: results["real_authors"]!, worldFacts: results["world_facts"]!,
                                   forget: results["forget"]!, retrainedForgetTruthRatios: gold.truthRatios)
        #expect(close(s.modelUtility, double(f["model_utility"]), rtol: 1e-12))
        #expect(close(s.forgetQuality, double(f["forget_quality"]), rtol: 1e-10))
        #expect(close(s.forgetKSStatistic, double(f["forget_ks_statistic"]), rtol: 1e-12))
        #expect(close(try TOFU.modelUtility(splits: [results["retain"]!, results["real_authors"]!, results["world_facts"]!]), s.modelUtility, rtol: 1e-15))
    }
}
