import ArgumentParser
import Datasets
import Engine
import Experiments
import Foundation
import Models
import Tokenizers
import Training

/// Text records → token examples, as the experiment pipeline formats them: the tokenizer's chat
/// template, or `User: …\nAssistant: …<eos>` for a tokenizer without one.
struct ExampleEncoder {
    let tokenizer: Tokenizer
    let template: ChatTemplate
    let eos: Int

    init(tokenizer: Tokenizer) throws {
        self.tokenizer = tokenizer
        template = ChatTemplate(for: tokenizer) ?? ChatTemplate(format: .plain)
        guard let eos = tokenizer.eosTokenIDs.first ?? tokenizer.tokenID(for: "<|endoftext|>") else {
            throw ModelCommandError("\(tokenizer.source): the tokenizer defines no end-of-sequence token")
        }
        self.eos = eos
    }

    func example(prompt: String, response: String) throws -> Training.Example {
        if prompt.isEmpty { return document(response) }
        let pair = try template.encodePair(prompt: prompt, response: response, tokenizer: tokenizer)
        return Training.Example(prompt: pair.prompt.map(Int32.init), response: pair.response.map(Int32.init))
    }

    func document(_ text: String) -> Training.Example {
        Training.Example(prompt: [], response: tokenizer.encode(text, addSpecialTokens: false).map(Int32.init) + [Int32(eos)])
    }

    /// Every record of a file as a DPO pair (prompt/chosen/rejected records only), each side
    /// tokenised with the same chat-template split as an SFT example.
    func loadPairs(_ path: String) throws -> [TokenPreferencePair] {
        let records: [DataRecord]
        do { records = try loadRecords(from: URL(fileURLWithPath: path)).records } catch {
            throw ModelCommandError("\(path): \(error)")
        }
        guard !records.isEmpty else { throw ModelCommandError("\(path): no records") }
        return try records.enumerated().map { i, r in
            guard case .preference(let p) = r else {
                throw ModelCommandError("\(path): record \(i + 1) is not a preference pair: dpo needs prompt, chosen and rejected fields")
            }
            return TokenPreferencePair(chosen: try example(prompt: p.prompt, response: p.chosen),
                                       rejected: try example(prompt: p.prompt, response: p.rejected))
        }
    }

    /// Every record of a file: prompt/response formats as SFT examples, texts as documents.
    func load(_ path: String) throws -> [Training.Example] {
        let url = URL(fileURLWithPath: path)
        let records: [DataRecord]
        do { records = try loadRecords(from: url).records } catch {
            throw ModelCommandError("\(path): \(error)")
        }
        guard !records.isEmpty else { throw ModelCommandError("\(path): no records") }
        return try records.enumerated().map { i, r in
            if let e = r.example { return try example(prompt: e.prompt, response: e.response) }
            switch r {
            case .text(let t): return document(t)
            case .document(let d):
                if case .text(let t) = d.document { return document(t) }
            default: break
            }
            throw ModelCommandError("\(path): record \(i + 1) is neither text nor a prompt/response pair")
        }
    }
}

/// Options shared by `train` and `unlearn`.
struct OptimizationOptions: ParsableArguments {
    @Option(help: "Peak learning rate.")
    var lr: Double?

    @Option(help: "Examples per batch.")
    var batchSize = 32

    @Option(help: "Longest sequence in tokens, at most the model's max_position_embeddings (see --truncation for longer examples).")
    var maxLength = 512

    @Option(help: ArgumentHelp(
        "What a longer example loses: drop-response-end, drop-prompt-start, or error.",
        discussion: """
        drop-response-end keeps the prompt and the first tokens of the response; drop-prompt-start \
        keeps the response and the last tokens of the prompt; either is an error when nothing of the \
        response would remain. error refuses the data, naming the first example too long, before any step.
        """))
    var truncation = "drop-response-end"

    @Option(help: "Optimizer: adamw or sgd.")
    var optimizer = "adamw"

    @Option(help: "AdamW betas, e.g. 0.9,0.999.")
    var betas = "0.9,0.999"

    @Option(help: "Weight decay.")
    var weightDecay = 0.0

    @Option(help: "SGD momentum (0: plain SGD).")
    var momentum = 0.0

    @Flag(help: "SGD with Nesterov momentum (needs --momentum > 0).")
    var nesterov = false

    @Option(help: "Schedule: constant, linear, cosine or wsd.")
    var schedule = "constant"

    @Option(help: "Warmup fraction of the steps.")
    var warmup = 0.0

    @Option(help: "Final decay fraction (wsd).")
    var decay = 0.0

    @Option(help: "Lowest learning-rate multiplier that cosine and wsd decay to.")
    var floor = 0.0

    @Option(help: "Clip gradients to this global norm.")
    var clipNorm: Double?

    @Option(help: "Seed of the batch order (and of a preset's initialisation).")
    var seed: UInt64 = 0

    @Option(help: "Threads (default: every core).")
    var threads: Int?

    func optimizerChoice() throws -> OptimizerChoice {
        guard let name = OptimizerChoice.Name(rawValue: optimizer) else {
            throw ValidationError("--optimizer: expected one of \(OptimizerChoice.Name.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(optimizer)\"")
        }
        if name != .sgd && (momentum != 0 || nesterov) {
            throw ValidationError("--momentum and --nesterov apply to --optimizer sgd, not \(optimizer)")
        }
        switch name {
        case .adamw:
            let b = betas.split(separator: ",").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard b.count == 2 else { throw ValidationError("--betas: expected two numbers like 0.9,0.999, got \"\(betas)\"") }
            return .adamw(AdamWConfig(beta1: b[0], beta2: b[1], weightDecay: weightDecay))
        case .sgd:
            let config = SGDConfig(momentum: momentum, nesterov: nesterov, weightDecay: weightDecay)
            do { try config.validate() } catch { throw ValidationError("\(error)") }
            return .sgd(config)
        }
    }

    func scheduleSpec() throws -> Training.ScheduleSpec {
        guard let kind = Training.ScheduleSpec.Kind(rawValue: schedule) else {
            throw ValidationError("--schedule: expected one of \(Training.ScheduleSpec.Kind.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(schedule)\"")
        }
        let s = Training.ScheduleSpec(kind: kind, warmup: warmup, decay: decay, floor: floor)
        do { try s.validate() } catch { throw ValidationError("\(error)") }
        return s
    }

    /// --truncation as the batcher's rule (the CLI spells it with dashes, specs with underscores).
    func truncationRule() throws -> Truncation {
        guard let rule = Truncation(rawValue: truncation.replacingOccurrences(of: "-", with: "_")) else {
            throw ValidationError("--truncation: expected drop-response-end, drop-prompt-start or error, got \"\(truncation)\"")
        }
        return rule
    }

    /// --max-length, capped at the model's context: a longer sequence would use positions the
    /// model was never built for.
    func maxContext(_ model: CausalLM) -> Int { min(maxLength, model.config.maxPositionEmbeddings) }

    /// Runs `body`; an example too long for the context gets the flags that decide it added.
    func explainingTooLong(_ body: () throws -> Void) throws {
        do { try body() } catch let error as TrainingError {
            guard case .tooLong = error else { throw error }
            throw ModelCommandError("\(error)\n(--max-length \(maxLength), --truncation \(truncation): a larger --max-length, "
                + "up to the model's max_position_embeddings, or another --truncation rule keeps such examples)")
        }
    }

    func validateCommon() throws {
        guard maxLength >= 2 else { throw ValidationError("--max-length must be >= 2, got \(maxLength)") }
        _ = try truncationRule()
        if let threads {
            guard threads > 0 else { throw ValidationError("--threads must be > 0") }
            Parallel.threads = threads
        }
    }
}

/// LoRA flags shared by `train` and `unlearn`.
struct LoRAOptions: ParsableArguments {
    @Option(help: "Train a LoRA adapter of this rank instead of every weight (the base is frozen).")
    var loraRank: Int?

    @Option(help: "LoRA alpha; the update is scaled by alpha/rank (default: 2·rank).")
    var loraAlpha: Double?

    @Option(help: "LoRA dropout on the adapter input while training, in [0, 1).")
    var loraDropout = 0.0

    @Option(help: "Comma-separated modules to adapt: q,k,v,o,gate,up,down (or q_proj, ...).")
    var loraTargets = "q,k,v,o,gate,up,down"

    @Flag(help: "Merge the trained adapter into the weights and save one plain HF checkpoint (default: the unchanged base checkpoint in --out and the PEFT adapter in --out/adapter).")
    var mergeLora = false

    /// The adapter config, or nil for full fine-tuning; rejects LoRA-only flags without --lora-rank.
    func config(seed: UInt64) throws -> LoRAConfig? {
        guard let rank = loraRank else {
            if loraAlpha != nil || loraDropout != 0 || mergeLora || loraTargets != "q,k,v,o,gate,up,down" {
                throw ValidationError("--lora-alpha, --lora-dropout, --lora-targets and --merge-lora need --lora-rank")
            }
            return nil
        }
        let targets = loraTargets.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let config = LoRAConfig(rank: rank, alpha: loraAlpha, dropout: loraDropout, targets: targets, seed: seed)
        do { try config.validate() } catch let e as LoRAError {
            throw ValidationError("--\(e.context.replacingOccurrences(of: ".", with: "-")): \(e.message)")
        }
        return config
    }

    /// Attaches the adapters (errors name the flag).
    func attach(to model: CausalLM, seed: UInt64) throws -> LoRA? {
        guard let config = try config(seed: seed) else { return nil }
        do { return try LoRA.attach(to: model, config: config) } catch let e as LoRAError {
            throw ValidationError("--\(e.context.replacingOccurrences(of: ".", with: "-")): \(e.message)")
        }
    }
}

/// Saves the result of `train` / `unlearn`: a plain checkpoint, or with LoRA either the merged
/// checkpoint (`--merge-lora`) or the unchanged base checkpoint plus the adapter in `out/adapter`.
func saveResult(_ model: CausalLM, lora: LoRA?, merge: Bool, tokenizerFile: URL, to out: String) throws -> String {
    guard let lora else {
        try saveCheckpoint(model, tokenizerFile: tokenizerFile, to: out)
        return out
    }
    if merge {
        try lora.mergeAndDetach()
        try saveCheckpoint(model, tokenizerFile: tokenizerFile, to: out)
        return "\(out) (LoRA merged)"
    }
    try saveCheckpoint(model, tokenizerFile: tokenizerFile, to: out)
    let adapter = URL(fileURLWithPath: out).appendingPathComponent("adapter")
    do { try lora.save(to: adapter, baseModel: URL(fileURLWithPath: out).standardizedFileURL.path) } catch let e as ModelIOError {
        throw ModelCommandError(e.description)
    }
    return "\(out) (base) + \(adapter.path) (LoRA adapter; load with --model \(out) --adapter \(adapter.path))"
}

/// Writes the interval checkpoint due after `r`; with LoRA attached it holds the (unchanged)
/// base weights and the adapter in `adapter/`, like the final output.
func saveInterval(_ saver: IntervalCheckpoints?, after r: StepReport, model: CausalLM, lora: LoRA?) throws {
    guard let saver else { return }
    try saver.save(after: r, model: model)
    if let lora, let last = saver.last, last.step == r.step {
        try lora.save(to: last.url.appendingPathComponent("adapter"), baseModel: last.url.standardizedFileURL.path)
    }
}

func printStep(_ r: StepReport) {
    let norm = r.gradientNorm.map { String(format: "%.4f", $0) } ?? "-"
    print(String(format: "step %d/%d  loss %.5f  lr %.3g  grad-norm %@", r.step, r.totalSteps, r.loss, r.learningRate, norm))
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model on one stage (lm, sft or dpo) or a sequence of stages, and save an HF checkpoint.",
        discussion: """
        --data is JSONL (or a JSON array) in any format `palimpsest data inspect` reads: texts are \
        documents (every token after the first is trained), prompt/response pairs use the \
        tokenizer's chat template (`User: …\\nAssistant: …<eos>` without one) and train the \
        response (--objective sft) or every token (lm). --objective dpo needs prompt/chosen/rejected \
        records and --beta; its reference is the model at the start of the stage. A fresh optimizer \
        and schedule per stage.

        --stages FILE.yaml (instead of --data) runs a sequence of stages (docs/spec.md, "Stages \
        files"): `stages:` lists entries with data, objective, epochs, lr, batch_size, beta, replay, \
        replay_per_batch, name; options a stage leaves out come from the flags. The model after \
        stage i is saved to --out/stage-<i>-<name>/, the final model to --out.
        """)

    @Option(help: "HF checkpoint directory to start from.")
    var model: String?

    @Option(help: "Architecture preset to initialise from scratch: \(ModelPreset.allCases.map(\.rawValue).joined(separator: ", ")).")
    var preset: String?

    @Option(help: "tokenizer.json (default: the one in --model).")
    var tokenizer: String?

    @Option(help: "Training data file (one stage).")
    var data: String?

    @Option(help: "YAML file listing a sequence of stages (instead of --data).")
    var stages: String?

    @Option(help: "Replay documents mixed into every batch.")
    var replay: String?

    @Option(help: "Replay examples per batch.")
    var replayPerBatch = 0

    @Option(help: "lm, sft or dpo.")
    var objective = "sft"

    @Option(help: "DPO's β (> 0; needed by dpo).")
    var beta: Double?

    @Option(help: "Passes over the data.")
    var epochs = 1

    @OptionGroup var opt: OptimizationOptions

    @OptionGroup var longRun: LongRunOptions
    @OptionGroup var loraOptions: LoRAOptions

    @Option(help: "Output checkpoint directory.")
    var out: String

    func run() throws { try opt.explainingTooLong(runCommand) }

    private func runCommand() throws {
        try opt.validateCommon()
        _ = try loraOptions.config(seed: opt.seed)
        guard (model == nil) != (preset == nil) else { throw ValidationError("give exactly one of --model and --preset") }
        guard (data == nil) != (stages == nil) else { throw ValidationError("give exactly one of --data and --stages") }
        guard let kind = StageKind(rawValue: objective) else {
            throw ValidationError("--objective: expected lm, sft or dpo, got \"\(objective)\"")
        }
        let defaults = StageDefaults(objective: kind, epochs: epochs, lr: opt.lr ?? 5e-4, batchSize: opt.batchSize, beta: beta,
                                     replay: replay, replayPerBatch: replayPerBatch)
        // The flags first, so that a bad flag is reported even when a stages file has problems too.
        let flagProblems = defaults.problems()
        guard flagProblems.isEmpty else {
            throw ValidationError(flagProblems.map { "\($0.path): \($0.message)" }.joined(separator: "; "))
        }
        // Every stage is checked (file and flags) before the model is even loaded.
        let plan: [ResolvedStage]
        if let stages {
            plan = try StageSequence.load(from: URL(fileURLWithPath: stages)).resolved(defaults: defaults)
        } else {
            do {
                plan = try StageSequence(file: "command line", stages: [StageEntry(data: data!)]).resolved(defaults: defaults)
            } catch let e as SpecError {
                // One stage from flags: name the flags, not a file position.
                throw ValidationError(e.issues.map {
                    $0.path.hasPrefix("--") ? "\($0.path): \($0.message)"
                        : $0.path == "stages[0].data" ? "--data: \($0.message)"
                        : $0.message.replacingOccurrences(of: "set beta or ", with: "")
                }.joined(separator: "; "))
            }
        }
        guard let tokPath = tokenizer ?? model.map({ URL(fileURLWithPath: $0).appendingPathComponent("tokenizer.json").path }) else {
            throw ValidationError("--tokenizer is required with --preset")
        }
        let tok = try Tokenizer.load(from: URL(fileURLWithPath: tokPath))
        let lm: CausalLM
        if let model { lm = try loadModel(model) } else {
            guard let p = ModelPreset(rawValue: preset!) else {
                throw ValidationError("--preset: unknown preset \"\(preset!)\" (expected one of \(ModelPreset.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            var config = p.config
            config.eosTokenIds = tok.eosTokenIDs
            if let bos = tok.bosTokenID { config.bosTokenId = bos }
            lm = try CausalLM(config: config, seed: opt.seed)
        }
        let lora = try loraOptions.attach(to: lm, seed: opt.seed)
        let encoder = try ExampleEncoder(tokenizer: tok)
        let runs = try StageRun.prepare(plan, examples: encoder.load, pairs: encoder.loadPairs) { s in
            var options = StageOptions(
                epochs: s.epochs,
                batching: BatchingOptions(batchSize: s.batchSize, maxContext: opt.maxContext(lm), truncation: try opt.truncationRule(),
                                          padId: Int32(lm.config.padTokenId ?? encoder.eos), replayPerBatch: s.replayPerBatch),
                optimizer: try opt.optimizerChoice(), schedule: try opt.scheduleSpec(), clipNorm: opt.clipNorm,
                objective: s.stageObjective, seed: opt.seed, learningRate: s.lr)
            options.microBatchSize = longRun.microBatchSize
            return options
        }
        let trainable = lm.trainableParameters.reduce(0) { $0 + $1.tensor.count }
        print("training \(trainable) parameters\(lora == nil ? "" : " (LoRA rank \(lora!.config.rank) on \(lora!.layers.count) modules)")")
        let tokURL = URL(fileURLWithPath: tokPath)
        let sequence = stages != nil
        let start = Date()
        var stageStart = Date()
        var firstStepEnd: Date?
        var saver: IntervalCheckpoints?
        func stageOut(_ i: Int) -> String {
            sequence ? URL(fileURLWithPath: out).appendingPathComponent(plan[i].directoryName).path : out
        }
        func begin(_ i: Int) throws {
            let s = plan[i], count: Int
            switch runs[i].data { case .examples(let e): count = e.count; case .pairs(let p): count = p.count }
            print("stage \(i + 1)/\(plan.count) \(s.name): \(count) \(s.objective == .dpo ? "pairs" : "examples") (\(s.objective.rawValue), \(s.epochs) epochs, lr \(s.lr))")
            stageStart = Date(); firstStepEnd = nil
            saver = try longRun.checkpoints(out: stageOut(i), companionFiles: checkpointCompanions(lm, tokenizerFile: tokURL))
        }
        try begin(0)
        var steps = 0
        _ = try longRun.guarding(saver) {
            try StageSequenceRunner.run(model: lm, stages: runs, progress: { _, r in
                if r.step == 1 { firstStepEnd = Date() }
                printStep(r)
                try saveInterval(saver, after: r, model: lm, lora: lora)
            }, afterStage: { i, result in
                let trained = Date()
                steps += result.steps
                var perStep = ""
                if let f = firstStepEnd, result.steps > 1 {
                    perStep = String(format: " (%.3f s/step after the first)", trained.timeIntervalSince(f) / Double(result.steps - 1))
                }
                var saved = ""
                if sequence {
                    saved = "; saved " + (try saveResult(lm, lora: lora, merge: false, tokenizerFile: tokURL, to: stageOut(i)))
                }
                print(String(format: "%d steps in %.1f s%@%@", result.steps, trained.timeIntervalSince(stageStart), perStep, saved))
                if i + 1 < plan.count { try begin(i + 1) }
            })
        }
        let saved = try saveResult(lm, lora: lora, merge: loraOptions.mergeLora, tokenizerFile: tokURL, to: out)
        if sequence {
            print(String(format: "%d stages, %d steps in %.1f s; saved %@", plan.count, steps, Date().timeIntervalSince(start), saved))
        } else {
            print("saved \(saved)")
        }
    }
}

struct Unlearn: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Unlearn a forget set from a checkpoint with GA, NPO, SimNPO, GradDiff, ... and save the result.",
        discussion: """
        Algorithms (docs/unlearning.md): ga, graddiff, npo, npo_rt, simnpo, simnpo_code, simnpo_rt, \
        idkdpo. The reference model of NPO/IdkDPO is the model before unlearning. --idk gives \
        IdkDPO's preferred answers, one line per forget record.
        """)

    @Option(help: "HF checkpoint directory (with tokenizer.json).")
    var model: String

    @Option(help: "tokenizer.json (default: the one in --model).")
    var tokenizer: String?

    @Option(help: "Forget set file.")
    var forget: String

    @Option(help: "Retain set file (graddiff, *_rt).")
    var retain: String?

    @Option(help: "IdkDPO's preferred answers (aligned with --forget).")
    var idk: String?

    @Option(help: "Unlearning algorithm.")
    var algorithm: String

    @Option(help: "β of NPO / SimNPO / IdkDPO.")
    var beta: Double?

    @Option(help: "γ of GradDiff / SimNPO.")
    var gamma: Double?

    @Option(help: "α (retain weight) of GradDiff / +RT / IdkDPO.")
    var alpha: Double?

    @Option(help: "Retain term of GradDiff / +RT / IdkDPO: nll (the retain set's NLL) or kl (KL from the model before unlearning, on the retain set).")
    var retainLoss: String?

    @Option(help: "Optimizer updates (default 10; or give --epochs).")
    var steps: Int?

    @Option(help: "Passes over the forget set instead of --steps: epochs × ⌈forget examples / batch size⌉ updates.")
    var epochs: Int?

    @OptionGroup var opt: OptimizationOptions

    @OptionGroup var longRun: LongRunOptions
    @OptionGroup var loraOptions: LoRAOptions

    @Option(help: "Output checkpoint directory.")
    var out: String

    func validate() throws {
        // (train checks --batch-size with the other stage options, in StageSequence.resolved)
        guard opt.batchSize > 0 else { throw ValidationError("--batch-size must be > 0, got \(opt.batchSize)") }
        if steps != nil && epochs != nil { throw ValidationError("give --steps or --epochs, not both") }
        if let steps, steps < 1 { throw ValidationError("--steps must be >= 1, got \(steps)") }
        if let epochs, epochs < 1 { throw ValidationError("--epochs must be >= 1, got \(epochs)") }
    }

    func run() throws { try opt.explainingTooLong(runCommand) }

    private func runCommand() throws {
        try opt.validateCommon()
        _ = try loraOptions.config(seed: opt.seed)
        var spec: [String: Any] = ["name": algorithm]
        if let beta { spec["beta"] = beta }
        if let gamma { spec["gamma"] = gamma }
        if let alpha { spec["alpha"] = alpha }
        if let retainLoss {
            guard RetainLoss(rawValue: retainLoss) != nil else {
                throw ValidationError("--retain-loss: expected nll or kl, got \"\(retainLoss)\"")
            }
            spec["retain"] = retainLoss
        }
        let objective: Objective
        do {
            objective = try JSONDecoder().decode(Objective.self, from: JSONSerialization.data(withJSONObject: spec))
        } catch DecodingError.dataCorrupted(let context) {
            // The objective's own message ("objective npo: unknown key 'retain'; ..."), not the decoder's wrapping.
            throw ValidationError("--algorithm \(algorithm): \(context.debugDescription)")
        } catch { throw ValidationError("--algorithm \(algorithm): \(error)") }
        let lm = try loadModel(model)
        let lora = try loraOptions.attach(to: lm, seed: opt.seed)
        // With LoRA the reference shares the frozen base weights (no second copy in memory).
        let reference = try lm.frozenReference()
        let tokPath = tokenizer ?? URL(fileURLWithPath: model).appendingPathComponent("tokenizer.json").path
        let tok = try Tokenizer.load(from: URL(fileURLWithPath: tokPath))
        let encoder = try ExampleEncoder(tokenizer: tok)
        let forgetSet = try encoder.load(forget)
        let retainSet = try retain.map { try encoder.load($0) } ?? []
        let idkSet = try idk.map { try encoder.load($0) }
        // Batches are drawn epoch after epoch, so whole epochs are ⌈N / batch⌉ updates each.
        // Whole epochs without `count + batch - 1` or a product that overflow for huge flags.
        let perEpoch = forgetSet.count / opt.batchSize + (forgetSet.count % opt.batchSize > 0 ? 1 : 0)
        let steps = try epochs.map { e in
            let (s, overflow) = e.multipliedReportingOverflow(by: perEpoch)
            guard !overflow else { throw ValidationError("--epochs \(e) of \(perEpoch) batches is too many steps") }
            return s
        } ?? self.steps ?? 10
        var options = UnlearningOptions(steps: steps, batchSize: opt.batchSize, maxContext: opt.maxContext(lm),
                                        padId: Int32(lm.config.padTokenId ?? encoder.eos), optimizer: try opt.optimizerChoice(),
                                        schedule: try opt.scheduleSpec(), clipNorm: opt.clipNorm, objective: objective,
                                        seed: opt.seed, learningRate: opt.lr ?? 1e-5)
        options.truncation = try opt.truncationRule()
        options.microBatchSize = longRun.microBatchSize
        print("unlearning \(forgetSet.count) examples with \(objective.name), \(steps) steps")
        let start = Date()
        let saver = try longRun.checkpoints(out: out, companionFiles: checkpointCompanions(lm, tokenizerFile: URL(fileURLWithPath: tokPath)))
        _ = try longRun.guarding(saver) {
            try Unlearner.run(model: lm, reference: reference, forget: forgetSet, retain: retainSet, idk: idkSet,
                              options: options, progress: { r in printStep(r); try saveInterval(saver, after: r, model: lm, lora: lora) })
        }
        let saved = try saveResult(lm, lora: lora, merge: loraOptions.mergeLora, tokenizerFile: URL(fileURLWithPath: tokPath), to: out)
        print(String(format: "%d steps in %.1f s; saved %@", steps, Date().timeIntervalSince(start), saved))
    }
}

/// Saves an HF checkpoint with the tokenizer (and its config, when present) beside the weights.
func saveCheckpoint(_ model: CausalLM, tokenizerFile: URL, to out: String) throws {
    try model.save(to: URL(fileURLWithPath: out), companionFiles: checkpointCompanions(model, tokenizerFile: tokenizerFile))
}

/// The files copied beside a saved model's weights: the tokenizer and its config.
func checkpointCompanions(_ model: CausalLM, tokenizerFile: URL) -> [URL] {
    let dir = tokenizerFile.deletingLastPathComponent()
    var companions = model.companionFiles.filter { $0.lastPathComponent != "tokenizer.json" }
    companions.append(tokenizerFile)
    let config = dir.appendingPathComponent("tokenizer_config.json")
    if FileManager.default.fileExists(atPath: config.path), !companions.contains(where: { $0.lastPathComponent == "tokenizer_config.json" }) {
        companions.append(config)
    }
    return companions
}
