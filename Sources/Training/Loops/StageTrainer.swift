import Engine
import Models

/// What a stage trains on.
public enum StageObjective: Sendable, Equatable {
    /// Language modelling: every token after the first of each example (prompt and response
    /// joined into one document).
    case lm
    /// Supervised fine-tuning: response tokens only.
    case sft
    /// DPO on preference pairs (`StageTrainer.train(model:preferencePairs:...)`); the reference is
    /// the model at the start of the stage.
    case dpo(beta: Double)
}

/// One training stage's settings.
public struct StageOptions: Sendable {
    public var epochs: Int
    public var batching: BatchingOptions
    public var optimizer: OptimizerChoice
    /// Resolved over the stage's total optimizer steps.
    public var schedule: ScheduleSpec
    /// Clip the gradient to this global L2 norm before each step (nil: no clipping).
    public var clipNorm: Double?
    public var objective: StageObjective
    /// Seeds the batch order (shuffling per epoch and replay draws).
    public var seed: UInt64
    /// Peak learning rate (multiplied by the schedule).
    public var learningRate: Double
    /// Rows per forward/backward pass: gradients are accumulated over micro-batches of this
    /// size into one update for the whole batch (same result up to rounding, less memory).
    /// nil: the whole batch at once.
    public var microBatchSize: Int? = nil

    public init(epochs: Int, batching: BatchingOptions, optimizer: OptimizerChoice, schedule: ScheduleSpec,
                clipNorm: Double? = nil, objective: StageObjective = .sft, seed: UInt64, learningRate: Double = 1e-5) {
        self.epochs = epochs; self.batching = batching; self.optimizer = optimizer; self.schedule = schedule
        self.clipNorm = clipNorm; self.objective = objective; self.seed = seed; self.learningRate = learningRate
    }

    public func validate() throws {
        try require(epochs >= 1, "StageOptions.epochs", "must be >= 1, got \(epochs)")
        if let m = microBatchSize { try require(m >= 1, "StageOptions.microBatchSize", "must be >= 1, got \(m)") }
        try batching.validate()
        try optimizer.validate()
        try schedule.validate()
        if case .dpo(let beta) = objective {
            try require(beta.isFinite && beta > 0, "StageOptions.objective.dpo.beta", "must be finite and > 0, got \(beta)")
        }
    }
}

/// Losses of a finished stage, one per optimizer step.
public struct StageResult: Sendable {
    public var steps: Int
    public var losses: [Double]
}

/// A tokenised DPO training pair: the preferred and the dispreferred response to the same prompt
/// (Datasets.PreferencePair is the text form).
public struct TokenPreferencePair: Hashable, Sendable, Codable {
    public var chosen: Example
    public var rejected: Example
    public init(chosen: Example, rejected: Example) { self.chosen = chosen; self.rejected = rejected }
}

/// Trains a model stage by stage, as in the paper: every stage gets a fresh optimizer and a
/// fresh learning-rate schedule.
public enum StageTrainer {
    /// Trains `model` in place on one stage.
    ///
    /// Batches come from `Batcher` (seeded shuffling per epoch; `batching.replayPerBatch`
    /// examples of `replayPool` in every batch). The loss is the token-mean NLL over the loss
    /// tokens of the whole batch (as transformers): for `.lm` every token after the first of
    /// each example, for `.sft` the response tokens; replayed examples always count with all
    /// their tokens (they are documents). A non-finite loss or gradient throws a
    /// `TrainingError` naming the step, before that step changes any parameter.
    @discardableResult
    public static func train(model: CausalLM, examples: [Example], replayPool: [Example] = [], options: StageOptions,
                             progress: (StepReport) throws -> Void = { _ in }) throws -> StageResult {
        let batcher = try checked(model: model, examples: examples, replayPool: replayPool, options: options)
        let plans = try batcher.plan(epochs: options.epochs)
        let loop = try UpdateLoop(model: model, optimizer: options.optimizer, schedule: options.schedule,
                                  totalSteps: plans.count, learningRate: options.learningRate, clipNorm: options.clipNorm,
                                  name: "StageTrainer")
        let pass = ObjectivePass(model: model, reference: nil, objective: .sft, padId: options.batching.padId,
                                 microBatch: options.microBatchSize)
        var losses: [Double] = []
        try withExtendedLifetime(model) {
            for (k, plan) in plans.enumerated() {
                let batch = try batcher.batch(plan)
                var report = try loop.update(k) { ctx in try pass.run([(.target, batch)], context: ctx) }
                losses.append(report.loss)
                report.epoch = plan.epoch + 1
                report.endsEpoch = k + 1 == plans.count || plans[k + 1].epoch != plan.epoch
                try progress(report)
            }
        }
        return StageResult(steps: plans.count, losses: losses)
    }

    /// Checks a stage as `train` will, before any step and without changing the model: the
    /// options, the context, every token id, and every example against the truncation rule.
    /// `StageSequenceRunner` checks all stages this way before training the first.
    public static func check(model: CausalLM, examples: [Example], replayPool: [Example] = [], options: StageOptions) throws {
        _ = try checked(model: model, examples: examples, replayPool: replayPool, options: options)
    }

    /// The stage's batcher, once everything `check` names holds.
    static func checked(model: CausalLM, examples: [Example], replayPool: [Example], options: StageOptions) throws -> Batcher {
        try options.validate()
        if case .dpo = options.objective {
            throw TrainingError.invalidOption(context: "StageOptions.objective",
                message: "a dpo stage trains on preference pairs: call StageTrainer.train(model:preferencePairs:options:)")
        }
        let stage = options.objective == .lm ? examples.map(asDocument) : examples
        try checkContext(options.batching.maxContext, model, "StageOptions.batching.maxContext")
        try checkVocabulary(examples, vocab: model.config.vocabSize, "StageTrainer.examples")
        try checkVocabulary(replayPool, vocab: model.config.vocabSize, "StageTrainer.replayPool")
        try require(options.batching.padId >= 0 && Int(options.batching.padId) < model.config.vocabSize, "batching.padId",
                    "must be a token id of the model (0..<\(model.config.vocabSize)), got \(options.batching.padId)")
        return try Batcher(examples: stage, replayPool: replayPool.map(asDocument), options: options.batching, seed: options.seed,
                           name: "stage examples")
    }

    /// Trains `model` in place on a DPO stage (`options.objective` must be `.dpo`).
    ///
    /// The reference is `reference`, or by default `model.frozenReference()` taken before the
    /// first step (with LoRA: the shared frozen base plus a snapshot of the adapters). Batches hold `batching.batchSize` pairs; replay is not supported (DPO has no
    /// term for plain documents).
    @discardableResult
    public static func train(model: CausalLM, preferencePairs: [TokenPreferencePair], reference: CausalLM? = nil,
                             options: StageOptions, progress: (StepReport) throws -> Void = { _ in }) throws -> StageResult {
        let (batcher, beta) = try checked(model: model, preferencePairs: preferencePairs, options: options)
        let ref = try reference ?? model.frozenReference()
        try checkCompatible(model, ref, "StageTrainer.reference")
        let rejected = preferencePairs.map(\.rejected)
        let plans = try batcher.plan(epochs: options.epochs)
        let loop = try UpdateLoop(model: model, optimizer: options.optimizer, schedule: options.schedule,
                                  totalSteps: plans.count, learningRate: options.learningRate, clipNorm: options.clipNorm,
                                  name: "StageTrainer")
        let pass = ObjectivePass(model: model, reference: ref, objective: .dpo(beta: beta), padId: options.batching.padId,
                                 microBatch: options.microBatchSize)
        var losses: [Double] = []
        try withExtendedLifetime(model) {
            for (k, plan) in plans.enumerated() {
                let chosen = try batcher.batch(plan)
                let rej = try batcher.companionBatch(plan, rejected, name: "preference pairs (rejected)")
                var report = try loop.update(k) { ctx in try pass.run([(.chosen, chosen), (.rejected, rej)], context: ctx) }
                losses.append(report.loss)
                report.epoch = plan.epoch + 1
                report.endsEpoch = k + 1 == plans.count || plans[k + 1].epoch != plan.epoch
                try progress(report)
            }
        }
        return StageResult(steps: plans.count, losses: losses)
    }

    /// Checks a DPO stage as `train(model:preferencePairs:)` will, chosen and rejected answers
    /// alike, before any step and without changing the model.
    public static func check(model: CausalLM, preferencePairs: [TokenPreferencePair], options: StageOptions) throws {
        _ = try checked(model: model, preferencePairs: preferencePairs, options: options)
    }

    static func checked(model: CausalLM, preferencePairs: [TokenPreferencePair],
                        options: StageOptions) throws -> (Batcher, beta: Double) {
        try options.validate()
        guard case .dpo(let beta) = options.objective else {
            throw TrainingError.invalidOption(context: "StageOptions.objective",
                                              message: "preference pairs need the dpo objective, got \(options.objective)")
        }
        try require(options.batching.replayPerBatch == 0, "batching.replayPerBatch",
                    "replay is not supported in a dpo stage, got \(options.batching.replayPerBatch)")
        guard !preferencePairs.isEmpty else {
            throw TrainingError.empty(context: "StageTrainer.preferencePairs", message: "the dpo stage has no pairs")
        }
        try checkContext(options.batching.maxContext, model, "StageOptions.batching.maxContext")
        try checkVocabulary(preferencePairs.flatMap { [$0.chosen, $0.rejected] }, vocab: model.config.vocabSize,
                            "StageTrainer.preferencePairs")
        try require(options.batching.padId >= 0 && Int(options.batching.padId) < model.config.vocabSize, "batching.padId",
                    "must be a token id of the model (0..<\(model.config.vocabSize)), got \(options.batching.padId)")
        let batcher = try Batcher(examples: preferencePairs.map(\.chosen), options: options.batching, seed: options.seed,
                                  name: "preference pairs (chosen)")
        try batcher.checkCompanions(preferencePairs.map(\.rejected), name: "preference pairs (rejected)")
        return (batcher, beta)
    }

    /// The example as one plain document: every token after the first carries a loss.
    static func asDocument(_ e: Example) -> Example {
        e.prompt.isEmpty ? e : Example(prompt: [], response: e.prompt + e.response)
    }
}

/// A reference model must score the same vocabulary as the trained one.
func checkCompatible(_ model: CausalLM, _ reference: CausalLM, _ context: String) throws {
    if model.config.vocabSize != reference.config.vocabSize {
        throw TrainingError.mismatch(context: context,
            message: "the reference model has vocabulary \(reference.config.vocabSize), the trained model \(model.config.vocabSize)")
    }
    if model === reference {
        throw TrainingError.invalidOption(context: context,
            message: "the reference is the trained model itself; pass a frozen copy (model.frozenReference())")
    }
}
