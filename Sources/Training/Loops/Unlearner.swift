import Engine
import Models

/// Settings of one unlearning run.
public struct UnlearningOptions: Sendable {
    /// Optimizer updates.
    public var steps: Int
    /// Forget examples per update (and retain examples, for non-local objectives).
    public var batchSize: Int
    public var maxContext: Int
    public var padId: Int32
    public var optimizer: OptimizerChoice
    /// Resolved over `steps`.
    public var schedule: ScheduleSpec
    public var clipNorm: Double?
    /// ga, npo, simnpo, graddiff, npo_rt, simnpo_rt, idkdpo, ... (see docs/unlearning.md).
    public var objective: Objective
    /// Seeds the forget batch order (and, independently, the retain batches).
    public var seed: UInt64
    /// Peak learning rate (multiplied by the schedule).
    public var learningRate: Double
    /// What to do with examples longer than `maxContext`.
    public var truncation: Truncation = .error
    /// Rows per forward/backward pass (gradient accumulation to the same update, see
    /// `StageOptions.microBatchSize`); nil: the whole batch at once.
    public var microBatchSize: Int? = nil

    public init(steps: Int, batchSize: Int, maxContext: Int, padId: Int32, optimizer: OptimizerChoice, schedule: ScheduleSpec,
                clipNorm: Double? = nil, objective: Objective, seed: UInt64, learningRate: Double = 1e-5) {
        self.steps = steps; self.batchSize = batchSize; self.maxContext = maxContext; self.padId = padId
        self.optimizer = optimizer; self.schedule = schedule; self.clipNorm = clipNorm; self.objective = objective
        self.seed = seed; self.learningRate = learningRate
    }

    var batching: BatchingOptions {
        BatchingOptions(batchSize: batchSize, maxContext: maxContext, truncation: truncation, padId: padId)
    }

    public func validate() throws {
        try require(steps >= 1, "UnlearningOptions.steps", "must be >= 1, got \(steps)")
        // The batches of every step are listed up front (and `steps + 1` of them for the forget set).
        try require(steps <= Batcher.maxPlannedSteps, "UnlearningOptions.steps", "must be at most \(Batcher.maxPlannedSteps), got \(steps)")
        if let m = microBatchSize { try require(m >= 1, "UnlearningOptions.microBatchSize", "must be >= 1, got \(m)") }
        try batching.validate()
        try optimizer.validate()
        try schedule.validate()
        try objective.validate()
        try require(objective.isUnlearning, "UnlearningOptions.objective",
                    "\(objective.name) is a training objective, not an unlearning one")
    }
}

/// Per-update losses of an unlearning run.
public struct UnlearningResult: Sendable {
    public var losses: [Double]
}

/// Unlearning by gradient steps on an `Objective` over the forget set.
public enum Unlearner {
    /// Unlearns `model` in place.
    ///
    /// Forget batches are a seeded shuffle of `forget` (epoch after epoch, the same order for
    /// every path and algorithm with the same seed). `retain` feeds the retain term of non-local
    /// objectives (its batches are drawn with their own stream of the same seed); `idk` gives
    /// IdkDPO's preferred answers, index-aligned with `forget`. `reference` is the frozen model
    /// before unlearning, needed by NPO, IdkDPO and KL retain terms. `evaluate(k)` runs with
    /// k = 0 before the first update and after every update with k updates done.
    ///
    /// - Throws: bad options; an empty forget set; missing retain data, reference or idk answers
    ///   that the objective needs; an example with nothing to predict; a non-finite loss or
    ///   gradient (a `TrainingError` naming the step, thrown before that step changes the model).
    @discardableResult
    public static func run(model: CausalLM, reference: CausalLM?, forget: [Example], retain: [Example] = [],
                           idk: [Example]? = nil, options: UnlearningOptions, evaluate: (Int) throws -> Void = { _ in },
                           progress: (StepReport) throws -> Void = { _ in }) throws -> UnlearningResult {
        try options.validate()
        let objective = options.objective
        guard !forget.isEmpty else {
            throw TrainingError.empty(context: "Unlearner.forget", message: "the forget set has no examples")
        }
        let roles = objective.roles
        let vocab = model.config.vocabSize
        try checkContext(options.maxContext, model, "UnlearningOptions.maxContext")
        try checkVocabulary(forget, vocab: vocab, "Unlearner.forget")
        try checkVocabulary(retain, vocab: vocab, "Unlearner.retain")
        try checkVocabulary(idk ?? [], vocab: vocab, "Unlearner.idk")
        try require(options.padId >= 0 && Int(options.padId) < vocab, "UnlearningOptions.padId",
                    "must be a token id of the model (0..<\(vocab)), got \(options.padId)")
        if roles.contains(.retain) && retain.isEmpty {
            throw TrainingError.empty(context: "Unlearner.retain",
                                      message: "\(objective.name) is not local: its retain term needs retain examples, got none")
        }
        let needsReference = roles.contains { objective.needsReferenceLogLikelihood($0) || objective.needsKL($0) }
        if needsReference {
            guard let reference else {
                throw TrainingError.empty(context: "Unlearner.reference",
                                          message: "\(objective.name) needs the frozen model before unlearning as reference, got nil")
            }
            try checkCompatible(model, reference, "Unlearner.reference")
        }
        if roles.contains(.alternative) {
            guard let idk else {
                throw TrainingError.empty(context: "Unlearner.idk", message: "\(objective.name) needs one preferred (\"I don't know\") answer per forget example, got none")
            }
            guard idk.count == forget.count else {
                throw TrainingError.mismatch(context: "Unlearner.idk", message: "\(idk.count) answers for \(forget.count) forget examples")
            }
        }

        let forgetBatcher = try Batcher(examples: forget, options: options.batching, seed: options.seed, name: "forget set")
        // One plan past the last step tells whether the last step ends an epoch.
        let forgetPlans = try plans(forgetBatcher, steps: options.steps + 1)
        var retainBatcher: Batcher? = nil, retainPlans: [BatchPlan] = []
        if roles.contains(.retain) {
            var rng = SeededRandom(seed: options.seed).derived("retain")
            let b = try Batcher(examples: retain, options: options.batching, seed: rng.next(), name: "retain set")
            retainPlans = try plans(b, steps: options.steps)
            retainBatcher = b
        }
        let alternatives: [Example]? = roles.contains(.alternative) ? idk : nil
        if let alternatives { try forgetBatcher.checkCompanions(alternatives, name: "idk answers") }

        let loop = try UpdateLoop(model: model, optimizer: options.optimizer, schedule: options.schedule,
                                  totalSteps: options.steps, learningRate: options.learningRate, clipNorm: options.clipNorm,
                                  name: "Unlearner")
        let pass = ObjectivePass(model: model, reference: needsReference ? reference : nil, objective: objective, padId: options.padId,
                                 microBatch: options.microBatchSize)
        var losses: [Double] = []
        try withExtendedLifetime(model) {
            try evaluate(0)
            for k in 0..<options.steps {
                let plan = forgetPlans[k]
                var groups: [(role: SequenceRole, batch: TokenBatch)] = [(.forget, try forgetBatcher.batch(plan))]
                if let alternatives { groups.append((.alternative, try forgetBatcher.companionBatch(plan, alternatives, name: "idk answers"))) }
                if let rb = retainBatcher { groups.append((.retain, try rb.batch(retainPlans[k]))) }
                var report = try loop.update(k) { ctx in try pass.run(groups, context: ctx) }
                losses.append(report.loss)
                report.epoch = plan.epoch + 1
                report.endsEpoch = forgetPlans[k + 1].epoch != plan.epoch
                try progress(report)
                try evaluate(k + 1)
            }
        }
        return UnlearningResult(losses: losses)
    }

    /// The first `steps` batches of consecutive epochs.
    static func plans(_ batcher: Batcher, steps: Int) throws -> [BatchPlan] {
        var out: [BatchPlan] = []
        var epoch = 0
        while out.count < steps {
            out += try batcher.plan(epoch: epoch)
            epoch += 1
        }
        return Array(out.prefix(steps))
    }
}
