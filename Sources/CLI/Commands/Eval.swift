import ArgumentParser
import Datasets
import Engine
import Evaluation
import FileSupport
import Foundation
import Models
import Tokenizers

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "The paper's metrics on checkpoints: log-likelihoods, forget score, fact utility, math accuracy, mass, distance, divergence, TOFU, membership inference, unlearning speed.",
        discussion: """
        Every subcommand reads HF checkpoint directories with tokenizer.json and prints one JSON object.
        Prompts and responses are rendered with the tokenizer's chat template (--template auto: the
        template named in tokenizer_config.json or recognised from the vocabulary, else `plain`,
        "User: {q}\\nAssistant: {a}{eos}"); --template none encodes prompt and prompt+response as plain text.
        Only response tokens are scored.
        """,
        subcommands: [EvalLoglik.self, EvalForget.self, EvalFacts.self, EvalMath.self, EvalMass.self,
                      EvalDistance.self, EvalDivergence.self, EvalTOFU.self, EvalMIA.self, EvalSpeed.self])
}

/// Options every `eval` subcommand shares.
struct EvalOptions: ParsableArguments {
    @Option(help: "Chat template: auto, plain, llama3, chatml, llama2 or none.")
    var template = "auto"

    @Option(help: "Sequences per forward pass.")
    var batchSize = 32

    func validate() throws {
        guard batchSize > 0 else { throw ValidationError("--batch-size must be > 0, got \(batchSize)") }
        guard ["auto", "none"].contains(template) || ChatTemplate.Format(rawValue: template) != nil else {
            throw ValidationError("--template must be auto, none, \(ChatTemplate.Format.allCases.map(\.rawValue).joined(separator: ", ")); got \(template)")
        }
    }
}

/// A checkpoint with its tokenizer, and how texts become token ids for it.
struct EvalModel {
    let path: String
    let model: CausalLM
    let tokenizer: Tokenizer
    let template: ChatTemplate?
    /// The tokenizer.json bytes, to check that compared models share a tokenizer.
    let tokenizerData: Data

    init(_ path: String, options: EvalOptions) throws {
        self.path = path
        model = try loadModel(path)
        let file = URL(fileURLWithPath: path).appendingPathComponent("tokenizer.json")
        let data: Data
        do { data = try readBoundedFile(atPath: file.path, limit: Tokenizer.maxFileBytes) } catch {
            throw ModelCommandError(error == .notFound ? "\(file.path): not found; eval needs the checkpoint's tokenizer.json" : "\(file.path): \(error)")
        }
        tokenizerData = data
        do { tokenizer = try Tokenizer.load(from: URL(fileURLWithPath: path)) } catch {
            throw ModelCommandError("\(file.path): \(error)")
        }
        guard tokenizer.vocabularySize <= model.config.vocabSize else {
            throw ModelCommandError("\(file.path): the tokenizer has \(tokenizer.vocabularySize) tokens but the model's vocabulary is \(model.config.vocabSize)")
        }
        switch options.template {
        case "none": template = nil
        case "auto": template = ChatTemplate(for: tokenizer) ?? ChatTemplate(format: .plain)
        default: template = ChatTemplate(format: ChatTemplate.Format(rawValue: options.template)!)
        }
    }

    /// Stop tokens: the config's EOS and the tokenizer's (with the chat format's end of turn).
    var eosTokenIds: Set<Int> { Set(model.config.eosTokenIds).union(tokenizer.eosTokenIDs) }

    /// Prompt and response ids; the response is what the assistant's turn adds (with its end-of-turn token).
    func pair(prompt: String, response: String) throws -> ScoredPair {
        if let template {
            let pair = try template.encodePair(prompt: prompt, response: response, tokenizer: tokenizer)
            return ScoredPair(prompt: pair.prompt.map { Int32($0) }, response: pair.response.map { Int32($0) })
        }
        let p = tokenizer.encode(prompt, addSpecialTokens: true)
        let full = tokenizer.encode(prompt + response, addSpecialTokens: true)
        // Score what the response adds, even if the join merges tokens at the seam.
        var common = 0
        while common < p.count, common < full.count, p[common] == full[common] { common += 1 }
        return ScoredPair(prompt: full[..<common].map { Int32($0) }, response: full[common...].map { Int32($0) })
    }

    /// Ids of a prompt for generation (with the template's assistant header).
    func generationPrompt(_ prompt: String) throws -> [Int32] {
        if let template {
            return try template.encode([.user(prompt)], tokenizer: tokenizer, addGenerationPrompt: true).ids.map { Int32($0) }
        }
        return tokenizer.encode(prompt, addSpecialTokens: true).map { Int32($0) }
    }

    /// Ids of a response alone, as the template renders the assistant's turn after `prompt`.
    func response(_ text: String, after prompt: String) throws -> [Int32] { try pair(prompt: prompt, response: text).response }
}

/// Runs a metric, turning library errors into messages without the usage text.
func evalRun<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as EvaluationError { throw ModelCommandError(e.description) } catch let e as DataError {
        throw ModelCommandError(e.description)
    } catch let e as TokenizerError { throw ModelCommandError("\(e)") }
}

func evalLoad<T>(_ what: String, _ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as DataError { throw ModelCommandError(e.description) } catch let e as ModelCommandError {
        throw e
    } catch { throw ModelCommandError("\(what): \(error)") }
}

/// JSON numbers, with non-finite values as null.
func jsonNumber(_ x: Double) -> Any { x.isFinite ? x : NSNull() }

func printJSON(_ object: [String: Any]) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
    print(String(decoding: data, as: UTF8.self))
}

func summaryJSON(_ s: LogLikelihoodSummary) -> [String: Any] {
    ["count": s.count, "tokens": s.totalTokens, "mean_per_token": jsonNumber(s.meanPerToken),
     "token_weighted_mean": jsonNumber(s.tokenWeightedMean), "mean_sum": jsonNumber(s.meanSum)]
}

func requireNonEmptyInput<C: Collection>(_ c: C, _ file: String, _ what: String) throws {
    if c.isEmpty { throw ModelCommandError("\(file): no \(what) found; the evaluation set is empty") }
}

struct EvalLoglik: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loglik", abstract: "Log-likelihood of each response given its prompt (any prompt/response JSONL).")

    @Option(help: "Checkpoint directory.") var model: String
    @Option(help: "JSONL of prompt/response pairs (any format with them).") var input: String
    @OptionGroup var options: EvalOptions

    func run() throws {
        let m = try EvalModel(model, options: options)
        let examples = try evalLoad(input) { try loadExamples(from: URL(fileURLWithPath: input)) }
        try requireNonEmptyInput(examples, input, "prompt/response records")
        let pairs = try evalRun { try examples.map { try m.pair(prompt: $0.prompt, response: $0.response) } }
        let lls = try evalRun { try ModelScoring.logLikelihoods(m.model, pairs, batchSize: options.batchSize) }
        let summary = try evalRun { try LogLikelihoodSummary(sequences: lls) }
        var out = summaryJSON(summary)
        out["model"] = model
        out["sequences"] = lls.enumerated().map { i, s in
            ["index": i, "tokens": s.tokenCount, "sum": jsonNumber(s.sum), "mean": jsonNumber(s.mean)] as [String: Any]
        }
        try printJSON(out)
    }
}

/// `{"model", key}`: the model's mean per-token log-likelihood of `pairs(model)`. With a baseline checkpoint
/// (same tokenizer required) also `"baseline"`, the baseline's value as `baseline_<key>` and
/// `compare(before, after)` as `scoreKey`. The model is scored before the baseline is loaded.
func loglikWithBaseline(_ m: EvalModel, baseline: String?, options: EvalOptions, metric: String, key: String, scoreKey: String,
                        compare: (LogLikelihoodSummary, LogLikelihoodSummary) throws -> Double,
                        pairs: (EvalModel) throws -> [ScoredPair]) throws -> [String: Any] {
    func score(_ e: EvalModel) throws -> LogLikelihoodSummary {
        let p = try evalRun { try pairs(e) }
        return try evalRun { try ModelMetrics.summary(e.model, pairs: p, batchSize: options.batchSize, metric: metric) }
    }
    let after = try score(m)
    var out: [String: Any] = ["model": m.path, key: jsonNumber(after.meanPerToken)]
    if let baseline {
        let b = try EvalModel(baseline, options: options)
        try requireSameTokenizer(m, b)
        let before = try score(b)
        out["baseline"] = baseline
        out["baseline_" + key] = jsonNumber(before.meanPerToken)
        out[scoreKey] = jsonNumber(try evalRun { try compare(before, after) })
    }
    return out
}

/// The forget prompts and the refusal phrasings scored on them (`eval forget`, `eval speed`).
struct ForgetPromptOptions: ParsableArguments {
    @Option(help: "JSONL of forget prompts (prompt/response records; responses ignored).") var prompts: String
    @Option(help: "refusals.json ({\"target\": ..., \"paraphrases\": [...]}); default: the built-in target and paraphrases.")
    var refusals: String?

    /// The prompts and phrasings, read once.
    func load() throws -> (prompts: [Example], phrasings: [String]) { try Self.load(prompts: prompts, refusals: refusals) }

    static func load(prompts: String, refusals: String?) throws -> (prompts: [Example], phrasings: [String]) {
        let examples = try evalLoad(prompts) { try loadExamples(from: URL(fileURLWithPath: prompts)) }
        try requireNonEmptyInput(examples, prompts, "forget prompts")
        var phrasings = [Safety.refusalTarget] + Safety.refusalParaphrases
        if let refusals {
            let obj = try evalLoad(refusals) { try JSONSerialization.jsonObject(with: readBoundedFile(atPath: refusals, limit: 16 << 20)) }
            guard let o = obj as? [String: Any], let target = o["target"] as? String, let para = o["paraphrases"] as? [String] else {
                throw ModelCommandError("\(refusals): expected {\"target\": string, \"paraphrases\": [string]}")
            }
            phrasings = [target] + para
        }
        return (examples, phrasings)
    }

    /// Every (prompt, phrasing) pair as a model's tokenizer and template encode it.
    static func pairs(_ e: EvalModel, _ set: (prompts: [Example], phrasings: [String])) throws -> [ScoredPair] {
        try set.prompts.flatMap { ex in try set.phrasings.map { try e.pair(prompt: ex.prompt, response: $0) } }
    }
}

struct EvalForget: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forget",
        abstract: "Mean per-token log-likelihood of the refusal target and paraphrases given the forget prompts; with --baseline, the forget score.")

    @Option(help: "Checkpoint directory (the unlearned model).") var model: String
    @Option(help: "Checkpoint before unlearning; gives forget_score = baseline − model.") var baseline: String?
    @OptionGroup var forget: ForgetPromptOptions
    @OptionGroup var options: EvalOptions

    func run() throws {
        let m = try EvalModel(model, options: options)
        let set = try forget.load()
        var out = try loglikWithBaseline(m, baseline: baseline, options: options, metric: "refusal log-likelihood",
                                         key: "refusal_loglik", scoreKey: "forget_score",
                                         compare: { try UnlearningScores.forgetScore(before: $0, after: $1) }) { e in
            try ForgetPromptOptions.pairs(e, set)
        }
        out["prompts"] = set.prompts.count
        out["phrasings"] = set.phrasings.count
        try printJSON(out)
    }
}

struct EvalSpeed: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "speed",
        abstract: "Unlearning speed: the forget score of each saved checkpoint of a run, and the steps until it reaches a threshold.",
        discussion: """
        --checkpoints lists the checkpoints of one unlearning run, each named checkpoint-<step> as \
        `palimpsest unlearn --save-every-steps` writes them, or the run's --out directory that holds \
        them. Step 0 is the baseline (forget score 0). The crossing is interpolated linearly between \
        the last step below the threshold and the first at or above it (--no-interpolate: that step).
        """)

    @Option(help: "Checkpoint before unlearning.") var baseline: String
    @Option(parsing: .upToNextOption, help: "checkpoint-<step> directories, or a directory holding them.") var checkpoints: [String]
    @OptionGroup var forget: ForgetPromptOptions
    @Option(help: "Forget score to reach.") var threshold = 1.0
    @Flag(inversion: .prefixedNo, help: "Interpolate the crossing between measured steps.") var interpolate = true
    @OptionGroup var options: EvalOptions

    /// (step, directory) of every checkpoint, in step order.
    static func trajectory(_ paths: [String]) throws -> [(step: Int, path: String)] {
        func step(_ path: String) -> Int? {
            let name = URL(fileURLWithPath: path).lastPathComponent
            guard name.hasPrefix("checkpoint-") else { return nil }
            return Int(name.dropFirst("checkpoint-".count))
        }
        var found: [(step: Int, path: String)] = []
        for path in paths {
            if let s = step(path) { found.append((s, path)); continue }
            let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            let inside = names.compactMap { name in step(name).map { ($0, URL(fileURLWithPath: path).appendingPathComponent(name).path) } }
            guard !inside.isEmpty else {
                throw ValidationError("--checkpoints: \(path) is not named checkpoint-<step> and holds no checkpoint-<step> directories")
            }
            found += inside
        }
        found.sort { $0.step < $1.step }
        for (a, b) in zip(found, found.dropFirst()) where a.step == b.step {
            throw ValidationError("--checkpoints: step \(a.step) twice (\(a.path), \(b.path))")
        }
        if let first = found.first, first.step < 1 {
            throw ValidationError("--checkpoints: \(first.path) is step \(first.step); step 0 is the baseline, checkpoints start at 1")
        }
        return found
    }

    func run() throws {
        let runs = try Self.trajectory(checkpoints)
        let set = try forget.load()
        let base = try EvalModel(baseline, options: options)
        func summary(_ e: EvalModel) throws -> LogLikelihoodSummary {
            let pairs = try evalRun { try ForgetPromptOptions.pairs(e, set) }
            return try evalRun { try ModelMetrics.summary(e.model, pairs: pairs, batchSize: options.batchSize, metric: "refusal log-likelihood") }
        }
        let before = try summary(base)
        var steps = [0], scores = [0.0]
        // One checkpoint in memory at a time.
        for (step, path) in runs {
            let m = try EvalModel(path, options: options)
            try requireSameTokenizer(base, m)
            let score = try evalRun { try UnlearningScores.forgetScore(before: before, after: summary(m)) }
            steps.append(step)
            scores.append(score)
        }
        let reached = try evalRun {
            try UnlearningSpeed.stepsToThreshold(steps: steps.map(Double.init), scores: scores, threshold: threshold, interpolate: interpolate)
        }
        try printJSON(["baseline": baseline, "checkpoints": runs.map(\.path), "steps": steps, "forget_scores": scores.map(jsonNumber),
                       "threshold": threshold, "interpolated": interpolate, "steps_to_threshold": reached.map(jsonNumber) ?? NSNull(),
                       "prompts": set.prompts.count, "phrasings": set.phrasings.count])
    }
}

struct EvalFacts: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "facts",
        abstract: "Mean per-token log-likelihood of entity (TOFU-style) answers; with --baseline, the fact utility.")

    @Option(help: "Checkpoint directory.") var model: String
    @Option(help: "Checkpoint before unlearning; gives fact_utility = 1 − |Δ|.") var baseline: String?
    @Option(help: "TOFU-format JSONL (question/answer).") var input: String
    @OptionGroup var options: EvalOptions

    func run() throws {
        let m = try EvalModel(model, options: options)
        let qa = try evalLoad(input) { try loadEntityQA(from: URL(fileURLWithPath: input)) }
        try requireNonEmptyInput(qa, input, "question/answer records")
        var out = try loglikWithBaseline(m, baseline: baseline, options: options, metric: "answer log-likelihood",
                                         key: "answer_loglik", scoreKey: "fact_utility",
                                         compare: { try UnlearningScores.factUtility(before: $0, after: $1) }) { e in
            try qa.map { try e.pair(prompt: $0.question, response: $0.answer) }
        }
        out["questions"] = qa.count
        try printJSON(out)
    }
}

struct EvalMath: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "math", abstract: "Accuracy on GSM8K-style problems: the number after #### must equal the reference's.")

    @Option(help: "Checkpoint directory.") var model: String
    @Option(help: "GSM8K-format JSONL (question/answer with #### <number>).") var input: String
    @Option(help: "Samples per question (0 = one greedy answer).") var samples = 0
    @Option(help: "Sampling temperature when --samples > 0.") var temperature: Float = 1
    @Option(help: "Seed of the sampling streams.") var seed: UInt64 = 0
    @Option(help: "Tokens to generate at most per answer.") var maxNewTokens = 256
    @Option(help: "Use only the first N questions.") var limit: Int?
    @Flag(help: "Include every generated answer in the output.") var showAnswers = false
    @OptionGroup var options: EvalOptions

    func run() throws {
        let m = try EvalModel(model, options: options)
        var problems = try evalLoad(input) { try loadMathProblems(from: URL(fileURLWithPath: input)) }
        if let limit { problems = Array(problems.prefix(max(0, limit))) }
        try requireNonEmptyInput(problems, input, "math problems")
        let prompts = try evalRun { try problems.map { try m.generationPrompt($0.question) } }
        let decode: ([Int]) -> String = { m.tokenizer.decode($0, skipSpecialTokens: true) }
        let texts = try evalRun {
            try ModelMetrics.mathSamples(m.model, prompts: prompts, samples: samples, maxNewTokens: maxNewTokens, seed: seed,
                                         eosTokenIds: m.eosTokenIds, temperature: temperature, batchSize: options.batchSize, decode: decode)
        }
        let acc = try evalRun { try MathAccuracy(samples: texts, references: problems.map(\.answer)) }
        var out: [String: Any] = ["model": model, "questions": problems.count, "samples_per_question": max(samples, 1),
                                  "accuracy": acc.mean, "per_question": acc.perQuestion, "unparsable": acc.unparsable,
                                  "total_samples": acc.totalSamples, "seed": seed]
        if showAnswers { out["answers"] = texts }
        try printJSON(out)
    }
}

struct EvalMass: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mass", abstract: "log π(C), log π(U), log π(R) and their shares for each probability-mass prompt.")

    @Option(help: "Checkpoint directory.") var model: String
    @Option(help: "Mass-format JSONL (prompt, compliance, target, refusal).") var input: String
    @Option(help: "Checkpoint before unlearning: classifies the run as deep (U fell and C fell below R), superficial (U fell, C did not) or none.")
    var baseline: String?
    @Option(help: "With --baseline: how far (nats) the mean log π(U) must fall to count as forgetting.") var minimumDrop = MassClassificationRule().minimumDrop
    @OptionGroup var options: EvalOptions

    func massPoints(_ m: EvalModel, _ items: [MassItem]) throws -> [MassPoint] {
        let encoded = try evalRun {
            try items.map { it -> (prompt: [Int32], c: [Int32], u: [Int32], r: [Int32]) in
                let c = try m.pair(prompt: it.prompt, response: it.compliance)
                return (c.prompt, c.response, try m.response(it.target, after: it.prompt), try m.response(it.refusal, after: it.prompt))
            }
        }
        return try evalRun { try ModelMetrics.mass(m.model, items: encoded, batchSize: options.batchSize) }
    }

    func run() throws {
        let m = try EvalModel(model, options: options)
        let items = try evalLoad(input) { try loadMassItems(from: URL(fileURLWithPath: input)) }
        try requireNonEmptyInput(items, input, "mass items")
        let points = try massPoints(m, items)
        let curve = try evalRun { try ProbabilityMass.curve([points]) }[0]
        let rows: [[String: Any]] = points.map { p in
            let s = p.shares
            return ["log_c": jsonNumber(p.logC), "log_u": jsonNumber(p.logU), "log_r": jsonNumber(p.logR),
                    "share_c": jsonNumber(s.c), "share_u": jsonNumber(s.u), "share_r": jsonNumber(s.r)]
        }
        var out: [String: Any] = [
            "model": model, "items": rows,
            "mean_log_c": jsonNumber(curve.meanLogC), "mean_log_u": jsonNumber(curve.meanLogU), "mean_log_r": jsonNumber(curve.meanLogR),
            "share_c": jsonNumber(curve.shareC), "share_u": jsonNumber(curve.shareU), "share_r": jsonNumber(curve.shareR)]
        if let baseline {
            let b = try EvalModel(baseline, options: options)
            try requireSameTokenizer(m, b)
            var rule = MassClassificationRule()
            rule.minimumDrop = minimumDrop
            let c = try evalRun { try ProbabilityMass.classify(initial: massPoints(b, items), final: points, rule: rule) }
            out["baseline"] = baseline
            out["classification"] = [
                "depth": c.depth.rawValue, "delta_c": jsonNumber(c.deltaC), "delta_u": jsonNumber(c.deltaU), "delta_r": jsonNumber(c.deltaR),
                "final_c_minus_r": jsonNumber(c.finalCMinusR), "minimum_drop": minimumDrop,
                "prompts": Dictionary(uniqueKeysWithValues: ForgettingDepth.allCases.map { ($0.rawValue, c.promptCounts[$0] ?? 0) }),
            ] as [String: Any]
        }
        try printJSON(out)
    }
}

/// Compared models must share the tokenizer: the same tokenizer.json and vocabulary.
func requireSameTokenizer(_ a: EvalModel, _ b: EvalModel) throws {
    guard a.tokenizerData == b.tokenizerData else {
        throw ModelCommandError("\(a.path) and \(b.path) have different tokenizer.json files; compared models must share a tokenizer")
    }
    do { try ModelMetrics.requireCompatible(a.model, b.model, "model comparison", a.path, b.path) } catch let e as EvaluationError {
        throw ModelCommandError(e.description)
    }
}

struct EvalDistance: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distance",
        abstract: "Distance of a model to the retrained model: on a probe set, squared log-prob difference and KL both ways; and the gaps in the other metrics.",
        discussion: """
        With --forget-prompts, --facts or --math, each metric is computed on both models and \
        `gaps` holds model − retrained: refusal_loglik, facts_loglik, math_accuracy, and with \
        --baseline (the model before unlearning) forget_score and fact_utility.
        """)

    @Option(help: "Checkpoint directory (e.g. the unlearned model).") var model: String
    @Option(help: "Checkpoint of the retrained model.") var retrained: String
    @Option(help: "JSONL of prompt/response probe pairs.") var input: String
    @Option(help: "Checkpoint before unlearning: adds the gaps in forget score and fact utility.") var baseline: String?
    @Option(help: "Forget prompts (JSONL): the gap in refusal log-likelihood (and forget score).") var forgetPrompts: String?
    @Option(help: "refusals.json for --forget-prompts; default: the built-in target and paraphrases.") var refusals: String?
    @Option(help: "TOFU-format JSONL: the gap in answer log-likelihood (and fact utility).") var facts: String?
    @Option(help: "GSM8K-format JSONL: the gap in greedy math accuracy.") var math: String?
    @Option(help: "Tokens to generate at most per math answer.") var maxNewTokens = 256
    @OptionGroup var options: EvalOptions

    func validate() throws {
        if baseline != nil && forgetPrompts == nil && facts == nil {
            throw ValidationError("--baseline gives the forget-score and fact-utility gaps: add --forget-prompts or --facts")
        }
    }

    func run() throws {
        let m = try EvalModel(model, options: options)
        let r = try EvalModel(retrained, options: options)
        try requireSameTokenizer(m, r)
        let examples = try evalLoad(input) { try loadExamples(from: URL(fileURLWithPath: input)) }
        try requireNonEmptyInput(examples, input, "prompt/response records")
        let probe = try evalRun { try examples.map { try m.pair(prompt: $0.prompt, response: $0.response) } }
        let d = try evalRun { try ModelMetrics.distance(m.model, to: r.model, probe: probe, batchSize: options.batchSize) }
        var out: [String: Any] = ["model": model, "retrained": retrained, "probe_pairs": probe.count]
        for (k, v) in d { out[k] = jsonNumber(v) }
        let gaps = try metricGaps(m, r)
        if !gaps.model.isEmpty {
            out["metrics"] = gaps.model.mapValues(jsonNumber)
            out["retrained_metrics"] = gaps.retrained.mapValues(jsonNumber)
            out["gaps"] = gaps.model.keys.reduce(into: [String: Any]()) { $0[$1] = jsonNumber(gaps.model[$1]! - gaps.retrained[$1]!) }
        }
        if let baseline { out["baseline"] = baseline }
        try printJSON(out)
    }

    /// The metrics the flags ask for, on the model and on the retrained model.
    func metricGaps(_ m: EvalModel, _ r: EvalModel) throws -> (model: [String: Double], retrained: [String: Double]) {
        var mine: [String: Double] = [:], theirs: [String: Double] = [:]
        let base = try baseline.map { try EvalModel($0, options: options) }
        if let base { try requireSameTokenizer(m, base) }
        func summary(_ e: EvalModel, _ pairs: (EvalModel) throws -> [ScoredPair], _ metric: String) throws -> LogLikelihoodSummary {
            let p = try evalRun { try pairs(e) }
            return try evalRun { try ModelMetrics.summary(e.model, pairs: p, batchSize: options.batchSize, metric: metric) }
        }
        /// `key` for both models, and `scoreKey` = compare(baseline, model) when there is a baseline.
        func loglik(_ key: String, _ scoreKey: String, _ metric: String, pairs: (EvalModel) throws -> [ScoredPair],
                    compare: (LogLikelihoodSummary, LogLikelihoodSummary) throws -> Double) throws {
            let a = try summary(m, pairs, metric), b = try summary(r, pairs, metric)
            mine[key] = a.meanPerToken
            theirs[key] = b.meanPerToken
            if let base {
                let before = try summary(base, pairs, metric)
                mine[scoreKey] = try evalRun { try compare(before, a) }
                theirs[scoreKey] = try evalRun { try compare(before, b) }
            }
        }
        if let forgetPrompts {
            let set = try ForgetPromptOptions.load(prompts: forgetPrompts, refusals: refusals)
            try loglik("refusal_loglik", "forget_score", "refusal log-likelihood", pairs: { try ForgetPromptOptions.pairs($0, set) },
                       compare: { try UnlearningScores.forgetScore(before: $0, after: $1) })
        }
        if let facts {
            let qa = try evalLoad(facts) { try loadEntityQA(from: URL(fileURLWithPath: facts)) }
            try requireNonEmptyInput(qa, facts, "question/answer records")
            try loglik("facts_loglik", "fact_utility", "answer log-likelihood",
                       pairs: { e in try qa.map { try e.pair(prompt: $0.question, response: $0.answer) } },
                       compare: { try UnlearningScores.factUtility(before: $0, after: $1) })
        }
        if let math {
            let problems = try evalLoad(math) { try loadMathProblems(from: URL(fileURLWithPath: math)) }
            try requireNonEmptyInput(problems, math, "math problems")
            func accuracy(_ e: EvalModel) throws -> Double {
                let prompts = try evalRun { try problems.map { try e.generationPrompt($0.question) } }
                let texts = try evalRun {
                    try ModelMetrics.mathSamples(e.model, prompts: prompts, samples: 0, maxNewTokens: maxNewTokens, seed: 0,
                                                 eosTokenIds: e.eosTokenIds, batchSize: options.batchSize,
                                                 decode: { e.tokenizer.decode($0, skipSpecialTokens: true) })
                }
                return try evalRun { try MathAccuracy(samples: texts, references: problems.map(\.answer)) }.mean
            }
            mine["math_accuracy"] = try accuracy(m)
            theirs["math_accuracy"] = try accuracy(r)
        }
        return (mine, theirs)
    }
}

struct EvalDivergence: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "divergence",
        abstract: "Pairwise Jeffreys divergence (k3 on sampled continuations) between models, e.g. the unlearned models of different paths.")

    @Option(parsing: .upToNextOption, help: "Two or more checkpoint directories.") var models: [String]
    @Option(help: "JSONL of prompts (prompt/response records; responses ignored).") var prompts: String
    @Option(help: "Tokens sampled per continuation at most.") var length = 32
    @Option(help: "Continuations per prompt and model.") var samples = 1
    @Option(help: "Seed of the sampling streams.") var seed: UInt64 = 0
    @Option(help: "Reduction of the k3 terms: token, sequence or sequenceRatio.") var level = "token"
    @Option(help: "Use only the first N prompts.") var limit: Int?
    @OptionGroup var options: EvalOptions

    func run() throws {
        guard models.count >= 2 else { throw ValidationError("--models needs at least 2 directories, got \(models.count)") }
        guard let lvl = PathDivergence.Level(rawValue: level) else {
            throw ValidationError("--level must be one of \(PathDivergence.Level.allCases.map(\.rawValue).joined(separator: ", ")); got \(level)")
        }
        let loaded = try models.map { try EvalModel($0, options: options) }
        for other in loaded.dropFirst() { try requireSameTokenizer(loaded[0], other) }
        var examples = try evalLoad(prompts) { try loadExamples(from: URL(fileURLWithPath: prompts)) }
        if let limit { examples = Array(examples.prefix(max(0, limit))) }
        try requireNonEmptyInput(examples, prompts, "prompts")
        let ids = try evalRun { try examples.map { try loaded[0].generationPrompt($0.prompt) } }
        let eos = loaded.reduce(Set<Int>()) { $0.union($1.eosTokenIds) }
        let matrix = try evalRun {
            try ModelMetrics.pairwiseJeffreys(loaded.map(\.model), prompts: ids, length: length, seed: seed, eosTokenIds: eos,
                                              samplesPerPrompt: samples, level: lvl, batchSize: options.batchSize)
        }
        try printJSON(["models": models, "prompts": examples.count, "samples_per_prompt": samples, "length": length, "seed": seed,
                       "level": level, "jeffreys": matrix.map { $0.map(jsonNumber) }])
    }
}
