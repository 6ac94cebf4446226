import ArgumentParser
import Datasets
import Evaluation
import Foundation

struct EvalTOFU: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tofu",
        abstract: "TOFU's metrics per split (probability, truth ratio, ROUGE-L recall of greedy answers), model utility and, with --retrained, forget quality.",
        discussion: """
        Splits are TOFU-format JSONL (question, answer, paraphrased_answer, perturbed_answer list). Every record
        needs at least one perturbed answer. Probability: mean exp(mean log-likelihood of the answer) on
        forget/retain; on real authors/world facts the answer's share among answer and perturbed answers.
        Truth ratio per question: exp(mean_k LL(perturbed_k) − LL(paraphrased)); reported as mean min(R, 1/R)
        on forget and mean max(0, 1 − R) elsewhere (real authors/world facts use the answer as the paraphrase,
        as TOFU does; a record without paraphrased_answer does too). Model utility: harmonic mean of the three
        numbers of every non-forget split given. Forget quality: KS p-value of the forget truth ratios
        against the retrained model's. See docs/metrics.md.
        """)

    @Option(help: "Checkpoint directory (the model evaluated, e.g. unlearned).") var model: String
    @Option(help: "TOFU-format JSONL of the forget split.") var forget: String
    @Option(help: "TOFU-format JSONL of the retain split.") var retain: String?
    @Option(help: "TOFU-format JSONL of the real-authors split.") var realAuthors: String?
    @Option(help: "TOFU-format JSONL of the world-facts split.") var worldFacts: String?
    @Option(help: "Checkpoint of the retrained model; gives forget quality.") var retrained: String?
    @Option(help: "Tokens of each greedy answer at most (ROUGE-L).") var maxNewTokens = 64
    @Option(help: "Use only the first N questions of each split.") var limit: Int?
    @Flag(help: "Include the greedy answers and per-question truth ratios in the output.") var showAnswers = false
    @OptionGroup var options: EvalOptions

    func validate() throws {
        guard maxNewTokens > 0 else { throw ValidationError("--max-new-tokens must be > 0, got \(maxNewTokens)") }
        if let limit, limit <= 0 { throw ValidationError("--limit must be > 0, got \(limit)") }
    }

    func run() throws {
        let m = try EvalModel(model, options: options)
        let gold = try retrained.map { try EvalModel($0, options: options) }
        if let gold { try requireSameTokenizer(m, gold) }
        var splits: [(split: TOFU.Split, file: String, items: [ModelMetrics.TOFUItem])] = []
        for (split, file) in [(TOFU.Split.forget, forget), (.retain, retain), (.realAuthors, realAuthors), (.worldFacts, worldFacts)] {
            guard let file else { continue }
            splits.append((split, file, try tofuItems(file, split: split, model: m, limit: limit)))
        }
        let decode: ([Int]) -> String = { m.tokenizer.decode($0, skipSpecialTokens: true) }
        var out: [String: Any] = ["model": model, "max_new_tokens": maxNewTokens]
        var results: [TOFU.SplitResult] = []
        var forgetRatios: [Double] = []
        for (split, file, items) in splits {
            let questions = try evalRun {
                try ModelMetrics.tofuQuestions(m.model, items: items, maxNewTokens: maxNewTokens, eosTokenIds: m.eosTokenIds,
                                               batchSize: options.batchSize, decode: decode)
            }
            let r = try evalRun { try TOFU.evaluate(questions, split: split) }
            var entry: [String: Any] = ["file": file, "questions": items.count, "probability": jsonNumber(r.probability),
                                        "rouge_l_recall": jsonNumber(r.rougeLRecall), "truth_ratio": jsonNumber(r.truthRatio),
                                        "truth_ratio_form": split == .forget ? "mean min(R, 1/R)" : "mean max(0, 1 - R)"]
            if showAnswers {
                entry["answers"] = questions.map(\.generated)
                entry["truth_ratios"] = r.truthRatios.map(jsonNumber)
            }
            out[Self.key(split)] = entry
            if split == .forget { forgetRatios = r.truthRatios } else { results.append(r) }
        }
        if !results.isEmpty {
            out["model_utility"] = jsonNumber(try evalRun { try TOFU.modelUtility(splits: results) })
            out["model_utility_splits"] = splits.filter { $0.split != .forget }.map { Self.key($0.split) }
        }
        if let gold {
            let items = splits[0].items
            let ratios = try evalRun { try ModelMetrics.truthRatios(gold.model, items: items, batchSize: options.batchSize) }
            let ks = try evalRun { try TOFU.forgetQuality(unlearnedTruthRatios: forgetRatios, retrainedTruthRatios: ratios) }
            out["retrained"] = gold.path
            out["forget_quality"] = jsonNumber(ks.pValue)
            out["forget_ks_statistic"] = jsonNumber(ks.statistic)
            out["retrained_forget_truth_ratio"] = jsonNumber(try evalRun { try TOFU.summarize(truthRatios: ratios, as: .forget) })
        }
        try printJSON(out)
    }

    static func key(_ split: TOFU.Split) -> String {
        switch split {
        case .forget: return "forget"
        case .retain: return "retain"
        case .realAuthors: return "real_authors"
        case .worldFacts: return "world_facts"
        }
    }
}

/// TOFU items of a file: the question as the model sees it and the token ids of every answer.
func tofuItems(_ file: String, split: TOFU.Split, model m: EvalModel, limit: Int?) throws -> [ModelMetrics.TOFUItem] {
    var qa = try evalLoad(file) { try loadEntityQA(from: URL(fileURLWithPath: file)) }
    if let limit { qa = Array(qa.prefix(limit)) }
    try requireNonEmptyInput(qa, file, "question/answer records")
    return try qa.enumerated().map { i, q in
        guard !q.perturbedAnswers.isEmpty else {
            throw ModelCommandError("\(file): record \(i + 1) has no perturbed_answer; TOFU's truth ratio needs at least one wrong answer per question")
        }
        return try evalRun {
            let answer = try m.pair(prompt: q.question, response: q.answer)
            // Real authors and world facts compare the answer itself with the perturbations (TOFU).
            let usesParaphrase = split == .forget || split == .retain
            return ModelMetrics.TOFUItem(
                prompt: answer.prompt, answer: answer.response,
                paraphrased: try q.paraphrasedAnswer.flatMap { usesParaphrase ? try m.response($0, after: q.question) : nil },
                perturbed: try q.perturbedAnswers.map { try m.response($0, after: q.question) }, reference: q.answer)
        }
    }
}

struct EvalMIA: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mia",
        abstract: "Membership inference: Min-k% probability ROC AUC between a forget set and a holdout set; with --retrained, MUSE's privacy leakage.",
        discussion: """
        Each record's response tokens are scored given its prompt (documents without a prompt: every token after
        the first); its score is the mean of its lowest ⌊k·n⌋ token log-probabilities (higher = more familiar).
        AUC = P(forget score > holdout score) + ½·P(tie): 0.5 = indistinguishable. Privacy leakage =
        (AUC − AUC_retrained) / AUC_retrained: ≈ 0 as private as retraining, > 0 the forget set is still
        recognisable (under-unlearning), < 0 it stands out as unfamiliar (over-unlearning). MUSE prints it ×100.
        """)

    @Option(help: "Checkpoint directory.") var model: String
    @Option(help: "JSONL of the forget set (members; any prompt/response format).") var forget: String
    @Option(help: "JSONL of the holdout set (non-members, never trained on).") var holdout: String
    @Option(help: "Fraction of lowest-probability tokens averaged (MUSE/TOFU use 0.2–0.4).") var k = 0.2
    @Option(help: "Checkpoint of the retrained model; gives privacy leakage.") var retrained: String?
    @Option(help: "Use only the first N records of each set.") var limit: Int?
    @Flag(help: "Include every record's score in the output.") var showScores = false
    @OptionGroup var options: EvalOptions

    func validate() throws {
        guard k > 0 && k <= 1 else { throw ValidationError("--k must be in (0, 1], got \(k)") }
        if let limit, limit <= 0 { throw ValidationError("--limit must be > 0, got \(limit)") }
    }

    func run() throws {
        let m = try EvalModel(model, options: options)
        let gold = try retrained.map { try EvalModel($0, options: options) }
        if let gold { try requireSameTokenizer(m, gold) }
        func load(_ file: String, _ what: String) throws -> [ScoredPair] {
            var examples = try evalLoad(file) { try loadExamples(from: URL(fileURLWithPath: file)) }
            if let limit { examples = Array(examples.prefix(limit)) }
            try requireNonEmptyInput(examples, file, "\(what) records")
            return try evalRun { try examples.map { try m.pair(prompt: $0.prompt, response: $0.response) } }
        }
        let members = try load(forget, "forget"), nonMembers = try load(holdout, "holdout")
        let a = try evalRun { try ModelMetrics.membership(m.model, members: members, nonMembers: nonMembers, k: k, batchSize: options.batchSize) }
        var out: [String: Any] = ["model": model, "k": k, "forget": forget, "holdout": holdout, "members": members.count,
                                  "non_members": nonMembers.count, "auc": jsonNumber(a.auc),
                                  "mean_member_score": jsonNumber(a.memberScores.reduce(0, +) / Double(members.count)),
                                  "mean_non_member_score": jsonNumber(a.nonMemberScores.reduce(0, +) / Double(nonMembers.count))]
        if showScores { out["member_scores"] = a.memberScores.map(jsonNumber); out["non_member_scores"] = a.nonMemberScores.map(jsonNumber) }
        if let gold {
            let b = try evalRun { try ModelMetrics.membership(gold.model, members: members, nonMembers: nonMembers, k: k, batchSize: options.batchSize) }
            out["retrained"] = gold.path
            out["retrained_auc"] = jsonNumber(b.auc)
            out["privacy_leakage"] = jsonNumber(try evalRun { try MembershipInference.privacyLeakage(unlearnedAUC: a.auc, retrainedAUC: b.auc) })
        }
        try printJSON(out)
    }
}
