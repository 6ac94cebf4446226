import Datasets
import Engine
import Evaluation
import Foundation
import Models
import Tokenizers
import Training

/// Does the real work of every unit: generates data, trains the tokenizer and the models,
/// unlearns, evaluates and compares. Units communicate only through their directories
/// (datasets, tokenizer.json, HF checkpoints, metrics.jsonl), so any unit can run in a fresh
/// process — locally or as a Slurm job.
public final class PipelineWorker: UnitWorker, @unchecked Sendable {
    public let spec: ExperimentSpec
    public let plan: ExperimentPlan
    private let lock = NSLock()
    private var data: ExperimentData?
    private var formatter: PromptFormatter?

    public init(spec: ExperimentSpec, plan: ExperimentPlan) {
        self.spec = spec; self.plan = plan
    }

    public func run(_ unit: PlanUnit, in directory: URL, store: RunStore, progress: @escaping @Sendable (UnitProgress) -> Void) throws -> [String: String] {
        switch unit.kind {
        case .data: return try DataGeneration.generate(spec: spec, into: directory)
        case .tokenizer: return try trainTokenizer(directory: directory, store: store)
        case .base: return try trainBase(unit, directory: directory, store: store, progress: progress)
        case .stage: return try trainStage(unit, directory: directory, store: store, progress: progress)
        case .unlearn: return try unlearn(unit, directory: directory, store: store, progress: progress)
        case .evaluateRetrained: return try evaluateRetrained(unit, directory: directory, store: store)
        case .compare: return try compare(unit, directory: directory, store: store, progress: progress)
        }
    }

    // MARK: - Shared inputs

    private func output(of id: String, _ key: String, store: RunStore) throws -> URL {
        guard let unit = plan.unit(id), let done = store.completion(of: unit), let value = done.outputs[key] else {
            throw ExperimentFailure("unit \(id) has not produced '\(key)'")
        }
        return store.directory(for: unit).appendingPathComponent(value)
    }

    private func experimentData(store: RunStore) throws -> ExperimentData {
        lock.lock(); defer { lock.unlock() }
        if let data { return data }
        guard let unit = plan.unit("data"), let done = store.completion(of: unit) else { throw ExperimentFailure("the datasets are not generated") }
        let d = ExperimentData(spec: spec, directory: store.directory(for: unit), outputs: done.outputs)
        data = d
        return d
    }

    private func tokenizerURL(store: RunStore) throws -> URL {
        if case .checkpoint(let dir) = spec.model, case .checkpoint = spec.tokenizer { return URL(fileURLWithPath: dir) }
        if case .file(let path) = spec.tokenizer { return URL(fileURLWithPath: path) }
        return try output(of: "tokenizer", "tokenizer", store: store)
    }

    private func promptFormatter(store: RunStore) throws -> PromptFormatter {
        lock.lock()
        if let formatter { lock.unlock(); return formatter }
        lock.unlock()
        let f = try PromptFormatter(tokenizer: try Tokenizer.load(from: try tokenizerURL(store: store)))
        lock.lock(); formatter = f; lock.unlock()
        return f
    }

    /// A seed for one purpose of one unit, stable across runs and machines.
    private func seed(_ unit: PlanUnit, _ purpose: String) -> UInt64 {
        var r = SeededRandom(seed: UInt64(unit.seed ?? 0)).derived(purpose + "|" + unit.prefix.joined(separator: "+"))
        return r.next()
    }

    // MARK: - Tokenizer and models

    private func trainTokenizer(directory: URL, store: RunStore) throws -> [String: String] {
        guard case .train(let dataset, let vocabSize, let minFrequency) = spec.tokenizer else {
            // Loaded tokenizers are checked here so that a bad file fails early.
            _ = try Tokenizer.load(from: try tokenizerURL(store: store))
            return [:]
        }
        let texts = try experimentData(store: store).corpus(dataset)
        let result = try BPETrainer(vocabularySize: vocabSize, minimumFrequency: minFrequency, split: .llama3).train(texts)
        try result.save(to: directory)
        return ["tokenizer": "tokenizer.json"]
    }

    private func examples(for stage: StageSpec, store: RunStore) throws -> [Training.Example] {
        let data = try experimentData(store: store)
        let f = try promptFormatter(store: store)
        let documents = try stage.objective == .lm || data.isDocuments(stage.data)
        return try data.pairs(stage.data, response: stage.response).map { pair in
            documents && !pair.prompt.isEmpty ? try f.encodeDocument(prompt: pair.prompt, response: pair.response)
                : try f.encode(prompt: pair.prompt, response: pair.response)
        }
    }

    private func replayPool(for stage: StageSpec, store: RunStore) throws -> [Training.Example] {
        guard let replay = stage.replay else { return [] }
        let f = try promptFormatter(store: store)
        return try experimentData(store: store).pairs(replay.dataset).map { pair in
            pair.prompt.isEmpty ? try f.encode(prompt: "", response: pair.response) : try f.encodeDocument(prompt: pair.prompt, response: pair.response)
        }
    }

    private func stageOptions(_ stage: StageSpec, model: CausalLM, seed: UInt64, padId: Int32) -> StageOptions {
        let batching = BatchingOptions(batchSize: stage.batchSize, maxContext: min(stage.maxLength ?? .max, model.config.maxPositionEmbeddings),
                                       padId: padId, replayPerBatch: stage.replay?.perBatch ?? 0)
        let objective: StageObjective
        switch stage.objective {
        case .lm: objective = .lm
        case .sft: objective = .sft
        case .dpo: objective = .dpo(beta: stage.dpoBeta)
        }
        return StageOptions(epochs: stage.epochs, batching: batching, optimizer: optimizer(stage.optimizer),
                            schedule: schedule(stage.schedule), clipNorm: stage.clipNorm, objective: objective, seed: seed,
                            learningRate: stage.optimizer.lr)
    }

    private func optimizer(_ o: OptimizerSpec) -> OptimizerChoice {
        switch o.name {
        case .adamw:
            return .adamw(AdamWConfig(beta1: o.betas[0], beta2: o.betas[1], eps: o.eps, weightDecay: o.weightDecay))
        case .sgd:
            return .sgd(SGDConfig(momentum: o.momentum, nesterov: o.nesterov, weightDecay: o.weightDecay))
        }
    }

    private func schedule(_ s: ScheduleSpec) -> Training.ScheduleSpec {
        switch s.kind {
        case .constant: return Training.ScheduleSpec(kind: .constant, warmup: s.warmup)
        case .linear: return Training.ScheduleSpec(kind: .linear, warmup: s.warmup, floor: s.floor)
        case .cosine: return Training.ScheduleSpec(kind: .cosine, warmup: s.warmup, floor: s.floor)
        case .wsd: return Training.ScheduleSpec(kind: .wsd, warmup: s.warmup, decay: s.decay, floor: s.floor)
        }
    }

    /// Attaches a fresh LoRA adapter as `lora` describes (nil: full fine-tuning).
    private func attachLoRA(_ lora: LoRASpec?, to model: CausalLM, seed: UInt64, field: String) throws -> LoRA? {
        guard let lora else { return nil }
        do {
            return try LoRA.attach(to: model, config: LoRAConfig(rank: lora.rank, alpha: lora.alpha, dropout: lora.dropout,
                                                                 targets: lora.targets, seed: seed))
        } catch let e as LoRAError {
            throw ExperimentFailure("\(field): \(e)")
        }
    }

    /// Trains a stage, through a LoRA adapter when the stage has one; the adapter is then merged
    /// into the weights, so the saved checkpoint (and the next stage) starts from the merged model.
    private func train(_ stage: StageSpec, model: CausalLM, examples: [Training.Example], replay: [Training.Example],
                       options: StageOptions, seed: UInt64, field: String, progress: (StepReport) -> Void) throws {
        let lora = try attachLoRA(stage.lora, to: model, seed: seed, field: field + ".lora")
        do {
            _ = try StageTrainer.train(model: model, examples: examples, replayPool: replay, options: options, progress: progress)
        } catch let error as TrainingError {
            // "stage examples: sequence too long: example 3 ..." says which stage and dataset.
            throw error.within("\(field) (dataset '\(stage.data)'\(stage.replay.map { ", replay '\($0.dataset)'" } ?? ""))")
        }
        try lora?.mergeAndDetach()
    }

    private func trainBase(_ unit: PlanUnit, directory: URL, store: RunStore, progress: @escaping @Sendable (UnitProgress) -> Void) throws -> [String: String] {
        let f = try promptFormatter(store: store)
        let model: CausalLM
        switch spec.model {
        case .checkpoint(let dir):
            model = try CausalLM(directory: URL(fileURLWithPath: dir))
        case .preset(let name):
            guard let preset = ModelPreset(rawValue: name) else { throw ExperimentFailure("model.preset: unknown preset '\(name)'") }
            var config = preset.config
            config.vocabSize = f.tokenizer.vocabularySize
            config.eosTokenIds = [f.eos]
            config.padTokenId = f.eos
            model = try CausalLM(config: config, seed: seed(unit, "init"))
        }
        if let pretraining = spec.pretraining {
            let examples = try examples(for: pretraining, store: store)
            let options = stageOptions(pretraining, model: model, seed: seed(unit, "pretraining"), padId: Int32(f.eos))
            try train(pretraining, model: model, examples: examples, replay: try replayPool(for: pretraining, store: store), options: options,
                      seed: seed(unit, "pretraining-lora"), field: "pretraining") { r in
                progress(UnitProgress(phase: "pretrain", step: r.step, totalSteps: r.totalSteps, loss: r.loss))
            }
        }
        try model.save(to: directory.appendingPathComponent("model"), companionFiles: tokenizerFiles(store: store))
        return ["model": "model"]
    }

    private func tokenizerFiles(store: RunStore) throws -> [URL] {
        let url = try tokenizerURL(store: store)
        let dir = url.hasDirectoryPath || url.pathExtension.isEmpty ? url : url.deletingLastPathComponent()
        return ["tokenizer.json", "tokenizer_config.json"].map { dir.appendingPathComponent($0) }
            .filter { FileManager.default.fileExists(atPath: $0.path) }
    }

    private func parentModel(_ unit: PlanUnit, store: RunStore) throws -> CausalLM {
        guard let parent = unit.dependencies.first else { throw ExperimentFailure("unit \(unit.id) has no parent model") }
        return try CausalLM(directory: try output(of: parent, "model", store: store))
    }

    private func trainStage(_ unit: PlanUnit, directory: URL, store: RunStore, progress: @escaping @Sendable (UnitProgress) -> Void) throws -> [String: String] {
        let f = try promptFormatter(store: store)
        guard let name = unit.prefix.last, let stage = spec.stages.first(where: { $0.name == name }) else {
            throw ExperimentFailure("unit \(unit.id) names no stage")
        }
        let model = try parentModel(unit, store: store)
        let options = stageOptions(stage, model: model, seed: seed(unit, "stage"), padId: Int32(f.eos))
        try train(stage, model: model, examples: try examples(for: stage, store: store), replay: try replayPool(for: stage, store: store),
                  options: options, seed: seed(unit, "stage-lora"), field: "stages.\(stage.name)") { r in
            progress(UnitProgress(phase: stage.name, step: r.step, totalSteps: r.totalSteps, loss: r.loss))
        }
        try model.save(to: directory.appendingPathComponent("model"), companionFiles: tokenizerFiles(store: store))
        return ["model": "model"]
    }

    // MARK: - Evaluation

    /// Token ids of every evaluation set, built once per unit.
    private struct EvaluationSets {
        var forgetPrompts: [[Int32]] = []
        var refusals: [[Int32]] = []
        var facts: [ScoredPair] = []
        var mathPrompts: [[Int32]] = []
        var mathAnswers: [String] = []
        var mass: [(prompt: [Int32], c: [Int32], u: [Int32], r: [Int32])] = []
        /// Membership inference: forget records (members) and holdout records (non-members).
        var miaMembers: [ScoredPair] = []
        var miaHoldout: [ScoredPair] = []
        /// TOFU questions, and the split they play: forget when they are the forget stage's data.
        var tofu: [ModelMetrics.TOFUItem] = []
        var tofuSplit: TOFU.Split = .retain
    }

    /// The dataset the unlearning forgets (and the stage response it learned).
    private var forgetData: (ref: String, response: String?) {
        let stage = spec.stages.first { $0.name == spec.forget }!
        return (spec.unlearning.forgetData ?? stage.data, stage.response)
    }

    private func evaluationSets(store: RunStore) throws -> EvaluationSets {
        let data = try experimentData(store: store)
        let f = try promptFormatter(store: store)
        let e = spec.evaluation
        var sets = EvaluationSets()
        if let ref = e.forgetPrompts {
            let pairs = try data.pairs(ref)
            sets.forgetPrompts = try pairs.map { try f.encodePrompt($0.prompt) }
            let (target, paraphrases) = try data.refusals(ref)
            // The refusal as the model answers it: the response ids of a formatted pair.
            sets.refusals = try ([target] + paraphrases.prefix(e.paraphrases)).map { try f.encode(prompt: "x", response: $0).response }
        }
        if let ref = e.facts {
            sets.facts = try data.pairs(ref).map { let x = try f.encode(prompt: $0.prompt, response: $0.response); return ScoredPair(prompt: x.prompt, response: x.response) }
        }
        if let ref = e.math, e.mathAt != .never {
            let problems = try data.mathReferences(ref)
            sets.mathPrompts = try problems.map { try f.encodePrompt($0.question) }
            sets.mathAnswers = problems.map(\.answer)
        }
        if let ref = e.mass {
            sets.mass = try data.massItems(ref).map { item in
                let p = try f.encodePrompt(item.prompt)
                return (p, try f.encode(prompt: item.prompt, response: item.compliance).response,
                        try f.encode(prompt: item.prompt, response: item.target).response,
                        try f.encode(prompt: item.prompt, response: item.refusal).response)
            }
        }
        if let mia = e.mia {
            let scored = { (pairs: [(prompt: String, response: String)]) in
                try pairs.prefix(mia.count).map { let x = try f.encode(prompt: $0.prompt, response: $0.response); return ScoredPair(prompt: x.prompt, response: x.response) }
            }
            sets.miaMembers = try scored(data.pairs(forgetData.ref, response: forgetData.response))
            sets.miaHoldout = try scored(data.pairs(mia.holdout))
        }
        if let tofu = e.tofu {
            sets.tofuSplit = ExperimentData.reference(tofu.data).name == ExperimentData.reference(forgetData.ref).name ? .forget : .retain
            sets.tofu = try data.entityQA(tofu.data).prefix(tofu.count).enumerated().map { i, q in
                guard !q.perturbedAnswers.isEmpty else {
                    throw ExperimentFailure("evaluation.tofu: record \(i + 1) of '\(tofu.data)' has no perturbed answers; TOFU's truth ratio needs them")
                }
                let answer = try f.encode(prompt: q.question, response: q.answer)
                return ModelMetrics.TOFUItem(prompt: answer.prompt, answer: answer.response,
                                             paraphrased: try q.paraphrasedAnswer.map { try f.encode(prompt: q.question, response: $0).response },
                                             perturbed: try q.perturbedAnswers.map { try f.encode(prompt: q.question, response: $0).response },
                                             reference: q.answer)
            }
        }
        return sets
    }

    /// Absolute metrics of a model: log-likelihoods, accuracy, probability mass; at the ends of
    /// unlearning (`ends`) also membership inference and TOFU's metrics.
    private func measure(_ model: CausalLM, _ sets: EvaluationSets, math: Bool, ends: Bool, store: RunStore) throws -> [String: Double] {
        var m: [String: Double] = [:]
        if !sets.forgetPrompts.isEmpty {
            m["refusal_loglik"] = try ModelMetrics.refusalLogLikelihood(model, prompts: sets.forgetPrompts, refusals: sets.refusals)
        }
        if !sets.facts.isEmpty { m["facts_loglik"] = try ModelMetrics.answerLogLikelihood(model, pairs: sets.facts) }
        if math && !sets.mathPrompts.isEmpty {
            let f = try promptFormatter(store: store)
            let accuracy = try ModelMetrics.mathAccuracy(model, prompts: sets.mathPrompts, references: sets.mathAnswers,
                                                         samples: spec.evaluation.mathSamples, maxNewTokens: 96, seed: 0,
                                                         eosTokenIds: [f.eos], decode: { f.tokenizer.decode($0, skipSpecialTokens: true) })
            m["math_accuracy"] = accuracy.mean
            // Answers without a number after #### count as wrong; their share is reported too.
            m["math_unparsable"] = Double(accuracy.unparsable) / Double(max(accuracy.totalSamples, 1))
        }
        if ends && !sets.miaMembers.isEmpty, let mia = spec.evaluation.mia {
            m["mia_auc"] = try ModelMetrics.membership(model, members: sets.miaMembers, nonMembers: sets.miaHoldout, k: mia.k).auc
        }
        if ends && !sets.tofu.isEmpty, let tofu = spec.evaluation.tofu {
            let f = try promptFormatter(store: store)
            let r = try ModelMetrics.tofu(model, items: sets.tofu, split: sets.tofuSplit, maxNewTokens: tofu.maxNewTokens, eosTokenIds: [f.eos],
                                          decode: { f.tokenizer.decode($0, skipSpecialTokens: true) })
            let prefix = sets.tofuSplit == .forget ? "tofu_forget_" : "tofu_"
            m[prefix + "probability"] = r.probability
            m[prefix + "rouge_l"] = r.rougeLRecall
            m[prefix + "truth_ratio"] = r.truthRatio
            if sets.tofuSplit != .forget { m["tofu_model_utility"] = try TOFU.modelUtility(splits: [r]) }
        }
        if !sets.mass.isEmpty {
            let points = try ModelMetrics.mass(model, items: sets.mass)
            let n = Double(points.count)
            m["mass_loglik_c"] = points.map(\.logC).reduce(0, +) / n
            m["mass_loglik_u"] = points.map(\.logU).reduce(0, +) / n
            m["mass_loglik_r"] = points.map(\.logR).reduce(0, +) / n
            m["mass_share_c"] = points.map { $0.shares.c }.reduce(0, +) / n
            m["mass_share_u"] = points.map { $0.shares.u }.reduce(0, +) / n
            m["mass_share_r"] = points.map { $0.shares.r }.reduce(0, +) / n
        }
        return m
    }

    private func position(of path: [String]) -> Int? { path.firstIndex(of: spec.forget).map { $0 + 1 } }

    private func unlearn(_ unit: PlanUnit, directory: URL, store: RunStore, progress: @escaping @Sendable (UnitProgress) -> Void) throws -> [String: String] {
        let f = try promptFormatter(store: store)
        guard let label = unit.algorithm, let algorithm = spec.unlearning.algorithms.first(where: { $0.label == label }) else {
            throw ExperimentFailure("unit \(unit.id) names no algorithm")
        }
        let objective = try Self.objective(algorithm)
        let model = try parentModel(unit, store: store)
        let u = spec.unlearning
        let lora = try attachLoRA(algorithm.lora ?? u.lora, to: model, seed: seed(unit, "unlearn-lora|" + label),
                                  field: "unlearning.algorithms.\(label).lora")
        // With LoRA the reference shares the frozen base weights: no second copy of the model.
        let reference = try model.frozenReference()
        let forgetStage = spec.stages.first { $0.name == spec.forget }!
        let data = try experimentData(store: store)
        let forget = try data.pairs(u.forgetData ?? forgetStage.data, response: forgetStage.response).map { try f.encode(prompt: $0.prompt, response: $0.response) }
        let retain = try u.retainData.map { try data.pairs($0).map { try f.encode(prompt: $0.prompt, response: $0.response) } } ?? []
        // IdkDPO prefers "I don't know" to the forget answer.
        let idk: [Training.Example]? = algorithm.name == "idkdpo"
            ? try data.pairs(u.forgetData ?? forgetStage.data).map { try f.encode(prompt: $0.prompt, response: "I don't know.") } : nil
        // The same forget batch order for every path and algorithm of a seed.
        let batchSeed = UInt64(unit.seed ?? 0) &* 0x9E37_79B9_7F4A_7C15 &+ 17
        let options = UnlearningOptions(steps: u.steps, batchSize: u.batchSize, maxContext: model.config.maxPositionEmbeddings,
                                        padId: Int32(f.eos), optimizer: optimizer(u.optimizer), schedule: schedule(u.schedule),
                                        objective: objective, seed: batchSeed, learningRate: u.optimizer.lr)
        let sets = try evaluationSets(store: store)
        let evaluateSteps = Set(spec.evaluation.steps)
        var records: [MetricRecord] = []
        var initial: [String: Double] = [:]
        let path = unit.prefix
        var completed = 0
        var outputs = ["metrics": "metrics.jsonl", "model": "model"]
        do {
            _ = try Unlearner.run(model: model, reference: reference, forget: forget, retain: retain, idk: idk, options: options, evaluate: { step in
                guard evaluateSteps.contains(step) else { return }
                let math = spec.evaluation.mathAt == .every || (spec.evaluation.mathAt == .ends && (step == 0 || step == u.steps))
                var m = try measure(model, sets, math: math, ends: step == 0 || step == u.steps, store: store)
                if step == 0 { initial = m }
                if let a = m["refusal_loglik"], let b = initial["refusal_loglik"] { m["forget_score"] = b - a }
                if let a = m["facts_loglik"], let b = initial["facts_loglik"] { m["fact_utility"] = 1 - abs(a - b) }
                if let a = m["math_accuracy"], let b = initial["math_accuracy"] { m["math_accuracy_change"] = a - b }
                records.append(MetricRecord(seed: unit.seed ?? 0, path: path, position: position(of: path), algorithm: label, step: step, metrics: m))
            }, progress: { r in
                completed = r.step
                progress(UnitProgress(phase: label, step: r.step, totalSteps: r.totalSteps, loss: r.loss))
            })
        } catch let error as TrainingError {
            // Gradient ascent can diverge by design: the unit keeps the model after the last
            // good update (the loop stops before a non-finite update; the checkpoint writer
            // refuses non-finite weights) and the metrics measured up to then, and says so.
            guard case .nonFinite = error else { throw error }
            outputs["diverged"] = "step \(completed + 1): \(error); kept the model after step \(completed) and the metrics up to step \(records.last?.step ?? 0)"
            store.log(["event": "diverged", "unit": unit.id, "step": "\(completed + 1)", "error": "\(error)"])
        }
        try writeAtomically(try MetricFiles.jsonl(records), to: directory.appendingPathComponent("metrics.jsonl"))
        // The unlearned model is saved merged, as every later comparison loads a plain checkpoint.
        try lora?.mergeAndDetach()
        try model.save(to: directory.appendingPathComponent("model"), companionFiles: tokenizerFiles(store: store))
        return outputs
    }

    /// `gap_<metric>` = unlearned − retrained for every metric of the unlearned model's last
    /// evaluation that the retrained model has. Metrics relative to the model before unlearning
    /// (forget score, fact utility, Δ math accuracy) are computed for the retrained model against
    /// the same baseline, so each gap says how far unlearning is from retraining on that metric.
    static func retrainGaps(unlearned u: [String: Double], baseline b: [String: Double], retrained r: [String: Double]) -> [String: Double] {
        var gold = r
        if let x = r["refusal_loglik"], let y = b["refusal_loglik"] { gold["forget_score"] = y - x }
        if let x = r["facts_loglik"], let y = b["facts_loglik"] { gold["fact_utility"] = 1 - abs(x - y) }
        if let x = r["math_accuracy"], let y = b["math_accuracy"] { gold["math_accuracy_change"] = x - y }
        var gaps: [String: Double] = [:]
        for (key, value) in u { if let g = gold[key] { gaps["gap_" + key] = value - g } }
        return gaps
    }

    static func objective(_ algorithm: AlgorithmSpec) throws -> Objective {
        var object: [String: Any] = ["name": algorithm.name]
        for (k, v) in algorithm.parameters { object[k] = v }
        if let retain = algorithm.retain { object["retain"] = retain.rawValue }
        let json = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        do { return try JSONDecoder().decode(Objective.self, from: json) } catch {
            throw ExperimentFailure("unlearning.algorithms: \(algorithm.label): \(error)")
        }
    }

    private func evaluateRetrained(_ unit: PlanUnit, directory: URL, store: RunStore) throws -> [String: String] {
        let model = try parentModel(unit, store: store)
        let m = try measure(model, try evaluationSets(store: store), math: spec.evaluation.mathAt != .never, ends: true, store: store)
        let record = MetricRecord(seed: unit.seed ?? 0, path: unit.prefix, position: nil, algorithm: "retrained", step: 0, metrics: m)
        try writeAtomically(try MetricFiles.jsonl([record]), to: directory.appendingPathComponent("metrics.jsonl"))
        return ["metrics": "metrics.jsonl"]
    }

    // MARK: - Comparison

    private func compare(_ unit: PlanUnit, directory: URL, store: RunStore, progress: @escaping @Sendable (UnitProgress) -> Void) throws -> [String: String] {
        let sets = try evaluationSets(store: store)
        let f = try promptFormatter(store: store)
        var probe: [ScoredPair] = sets.forgetPrompts.map { ScoredPair(prompt: $0, response: sets.refusals.first ?? []) }
        probe += sets.facts.prefix(64)
        let units = unit.dependencies.compactMap { plan.unit($0) }
        let retrained = Dictionary(uniqueKeysWithValues: try units.filter { $0.kind == .evaluateRetrained }.map { u in
            (u.prefix, (model: try CausalLM(directory: try output(of: u.dependencies[0], "model", store: store)),
                        record: try MetricFiles.readJSONL(MetricRecord.self, from: try output(of: u.id, "metrics", store: store)).first))
        })
        var records: [ComparisonRecord] = []
        let algorithms = spec.unlearning.algorithms.map(\.label)
        for (ai, algorithm) in algorithms.enumerated() {
            let runs = units.filter { $0.kind == .unlearn && $0.algorithm == algorithm }
            let models = try runs.map { try CausalLM(directory: try output(of: $0.id, "model", store: store)) }
            let labels = runs.map { run in position(of: run.prefix).map { "p=\($0)" } ?? run.prefix.joined(separator: ">") }
            var toRetrained: [[String: Double]] = []
            for (run, model) in zip(runs, models) {
                guard let gold = retrained[run.prefix.filter { $0 != spec.forget }] else { toRetrained.append([:]); continue }
                var row = try ModelMetrics.distance(model, to: gold.model, probe: probe)
                let records = try MetricFiles.readJSONL(MetricRecord.self, from: try output(of: run.id, "metrics", store: store))
                if let last = records.max(by: { $0.step < $1.step }), let baseline = records.first(where: { $0.step == 0 }), let r = gold.record {
                    for (key, value) in Self.retrainGaps(unlearned: last.metrics, baseline: baseline.metrics, retrained: r.metrics) { row[key] = value }
                    if let a = last.metrics["mia_auc"], let b = r.metrics["mia_auc"], b > 0 {
                        row["privacy_leakage"] = try MembershipInference.privacyLeakage(unlearnedAUC: a, retrainedAUC: b)
                    }
                }
                if !sets.tofu.isEmpty && sets.tofuSplit == .forget {
                    let ks = try TOFU.forgetQuality(unlearnedTruthRatios: try ModelMetrics.truthRatios(model, items: sets.tofu),
                                                    retrainedTruthRatios: try ModelMetrics.truthRatios(gold.model, items: sets.tofu))
                    row["forget_quality"] = ks.pValue
                }
                toRetrained.append(row)
            }
            // Empty when not measured, so that the report leaves it out.
            var divergence: [[Double]] = []
            if spec.evaluation.divergenceSamples > 0 && !sets.forgetPrompts.isEmpty && models.count > 1 {
                divergence = try ModelMetrics.pairwiseJeffreys(models, prompts: Array(sets.forgetPrompts.prefix(spec.evaluation.divergenceSamples)),
                                                               length: spec.evaluation.divergenceLength, seed: UInt64(unit.seed ?? 0), eosTokenIds: [f.eos])
            }
            records.append(ComparisonRecord(seed: unit.seed ?? 0, algorithm: algorithm, labels: labels, divergence: divergence, toRetrained: toRetrained))
            progress(UnitProgress(phase: "compare", step: ai + 1, totalSteps: algorithms.count))
        }
        try writeAtomically(try MetricFiles.jsonl(records), to: directory.appendingPathComponent("comparisons.jsonl"))
        return ["comparisons": "comparisons.jsonl"]
    }
}
